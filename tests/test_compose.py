"""docker-compose.yaml, the Dockerfile and .dockerignore, checked without a Docker engine."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from queueapp.config import SETTINGS

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yaml").read_text())


@pytest.fixture(scope="module")
def services(compose) -> dict:
    return compose["services"]


def environment(service: dict) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {key: str(value) for key, value in env.items()}


def test_the_four_services(services):
    assert set(services) == {"redis", "server", "worker", "client"}


def test_redis_persists_and_reports_health(compose, services):
    redis = services["redis"]
    assert redis["image"] == "redis:7-alpine"
    command = redis["command"]
    assert command[command.index("--appendonly") + 1] == "yes"
    assert command[command.index("--maxmemory-policy") + 1] == "noeviction"  # a queue must never be evicted
    [volume] = redis["volumes"]
    name, mount = volume.split(":")
    assert mount == "/data" and name in compose["volumes"]
    assert redis["healthcheck"]["test"] == ["CMD", "redis-cli", "ping"]


def test_python_services_share_one_image_and_the_env_file(services):
    for name in ("server", "worker", "client"):
        service = services[name]
        assert service["build"] == ".", name
        assert service["image"] == services["server"]["image"], name
        # .env.example always, then the user's .env when it exists (later files win).
        assert service["env_file"] == [{"path": ".env.example", "required": True}, {"path": ".env", "required": False}], name
    assert (ROOT / ".env.example").is_file()
    assert (ROOT / "Dockerfile").is_file()


def test_the_redis_container_has_the_name_the_monitoring_commands_use(services):
    """``docker exec -it redis-queue-example redis-cli ...``, as the README and docs/docker.md write it."""
    assert services["redis"]["container_name"] == "redis-queue-example"
    docs = (ROOT / "README.md").read_text() + (ROOT / "docs" / "docker.md").read_text()
    assert "docker exec -it redis-queue-example redis-cli LLEN a2a:queue" in docs
    assert "cp .env.example .env" in docs


def test_compose_reads_dot_env_when_present_and_not_otherwise(tmp_path):
    """The env_file rule, applied as Compose applies it: required files must exist, optional ones
    are read when present, and a later file wins over an earlier one."""
    from dotenv import dotenv_values

    def merged(files: list[dict]) -> dict:
        values: dict = {}
        for entry in files:
            path = tmp_path / entry["path"]
            if not path.exists():
                assert not entry["required"], entry
                continue
            values.update(dotenv_values(path))
        return values

    files = yaml.safe_load((ROOT / "docker-compose.yaml").read_text())["services"]["worker"]["env_file"]
    (tmp_path / ".env.example").write_text((ROOT / ".env.example").read_text())
    assert "A2A_AGENT" not in merged(files)  # no .env: nothing is required of the user
    (tmp_path / ".env").write_text("A2A_AGENT=demo\n")
    assert merged(files)["A2A_AGENT"] == "demo"


def test_server_runs_no_worker_and_waits_for_a_healthy_redis(services):
    server = services["server"]
    assert server["command"] == ["python", "manage.py", "serve"]
    env = environment(server)
    assert env["A2A_EMBEDDED_WORKERS"] == "0"
    assert env["A2A_SERVER_HOST"] == "0.0.0.0"
    assert env["A2A_QUEUE_URL"] == "redis://redis:6379/0"
    assert server["depends_on"]["redis"]["condition"] == "service_healthy"
    port, grpc_port = env["A2A_SERVER_PORT"], env["A2A_GRPC_PORT"]
    assert server["ports"] == [f"{port}:{port}", f"{grpc_port}:{grpc_port}"]
    assert re.search(rf"^EXPOSE {port} {grpc_port}$", (ROOT / "Dockerfile").read_text(), re.M)
    check = " ".join(server["healthcheck"]["test"])
    assert f"http://127.0.0.1:{port}/health" in check


def test_worker_scales(services):
    worker = services["worker"]
    assert worker["command"] == ["python", "manage.py", "runworker"]
    assert "container_name" not in worker and "ports" not in worker  # both would stop --scale worker=3
    assert environment(worker)["A2A_QUEUE_URL"] == environment(services["server"])["A2A_QUEUE_URL"]
    assert worker["depends_on"]["redis"]["condition"] == "service_healthy"


def test_client_starts_once_the_server_is_healthy(services):
    client = services["client"]
    assert client["command"][:3] == ["python", "manage.py", "a2a_client"]
    url = client["command"][client["command"].index("--url") + 1]
    assert url == f"http://server:{environment(services['server'])['A2A_SERVER_PORT']}"
    assert client["depends_on"]["server"]["condition"] == "service_healthy"
    assert client["restart"] == "no"  # it runs once and exits with the demo's result


def test_every_variable_set_is_a_known_setting(services):
    dockerfile_vars = re.findall(r"\b(A2A_[A-Z0-9_]+)=", (ROOT / "Dockerfile").read_text())
    compose_vars = [key for service in services.values() for key in environment(service)]
    assert compose_vars and dockerfile_vars
    unknown = sorted({name for name in compose_vars + dockerfile_vars if name not in SETTINGS})
    assert unknown == []


def test_dockerfile_installs_the_requirements_and_runs_manage_py():
    text = (ROOT / "Dockerfile").read_text()
    assert re.search(r"^FROM python:3\.1[1-9]", text, re.M)
    assert "pip install -r /tmp/requirements.txt" in text
    assert "COPY requirements.txt" in text and "COPY . /app" in text
    assert "pip install -r /tmp/requirements-otlp.txt" in text  # traces export over OTLP once OTEL_* says where
    assert re.search(r"^USER (?!root)\w+", text, re.M)  # not as root
    assert 'CMD ["python", "manage.py", "serve"]' in text
    # PYTHONDONTWRITEBYTECODE keeps processes from caching bytecode, so the image holds it.
    assert "PYTHONDONTWRITEBYTECODE=1" in text and "python -m compileall -q /app/queueapp" in text


def test_dockerignore_keeps_secrets_and_local_state_out():
    ignored = {line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines() if line.strip() and not line.startswith("#")}
    assert {".env", ".venv", "var", ".git"} <= ignored


def test_the_server_healthcheck_passes_only_while_the_server_is_healthy(services, processes, redis_url):
    test = services["server"]["healthcheck"]["test"]
    assert test[0] == "CMD" and test[1] == "python"
    port = environment(services["server"])["A2A_SERVER_PORT"]
    server = processes.serve(redis_url)
    command = [sys.executable, *[arg.replace(f":{port}/", f":{server.port}/") for arg in test[2:]]]
    assert subprocess.run(command, capture_output=True, timeout=30).returncode == 0
    server.stop()
    assert subprocess.run(command, capture_output=True, timeout=30).returncode != 0
