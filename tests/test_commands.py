"""The management commands as users run them: real processes on a real Redis."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import httpx
import pytest
import redis.asyncio as aioredis

from queueapp.embedded import embedded_socket, stop_embedded_server
from queueapp.store import QueueStore
from queueapp.store.keys import Keys
from tests.faults.tools import eventually, manage, states, submit, sync_client, user_message
from tests.support import ROOT, base_env, free_port

STORE_OPTIONS = {"decode_responses": True}


def test_runworker_is_ours_not_channels(tmp_path):
    env = base_env(None, str(tmp_path))
    found = subprocess.run(
        [sys.executable, "-c", "import django; django.setup(); from django.core.management import get_commands; print(get_commands()['runworker'])"],
        cwd=ROOT, env={**env, "DJANGO_SETTINGS_MODULE": "a2a_site.settings"}, capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert found.stdout.strip() == "queueapp"
    help_text = manage("runworker", "--help", env=env).stdout
    assert "A2A queue worker" in help_text and "--concurrency" in help_text
    assert "channel" not in help_text.lower()


@pytest.mark.parametrize("command", ["serve", "runworker"])
def test_bad_configuration_stops_the_command_with_one_line(command, redis_url, tmp_path):
    env = base_env(redis_url, str(tmp_path), A2A_WORKER_CONCURRENCY="0")
    result = manage(command, env=env)
    assert result.returncode != 0
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert lines[-1] == "CommandError: A2A_WORKER_CONCURRENCY='0' is invalid: expected a whole number of tasks from 1 to 1000"


@pytest.mark.parametrize("command", ["serve", "runworker"])
def test_a_settings_file_that_is_not_there_stops_the_command_with_one_line(command, redis_url, tmp_path):
    missing = tmp_path / "production.env"
    result = manage(command, env=base_env(redis_url, str(tmp_path), A2A_ENV_FILE=str(missing)))
    assert result.returncode != 0
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert lines[-1] == f"CommandError: A2A_ENV_FILE='{missing}' is invalid: expected the path of a file of settings, and there is no such file"


@pytest.mark.parametrize("command", ["serve", "runworker"])
def test_unreachable_redis_at_start_exits_non_zero_without_fallback(command, tmp_path):
    port = free_port()
    env = base_env(f"redis://127.0.0.1:{port}/0", str(tmp_path), A2A_QUEUE_OPTIONS_MAX_RETRIES="1", A2A_QUEUE_OPTIONS_TIMEOUT="500ms")
    result = manage(command, env=env)
    assert result.returncode != 0
    output = result.stdout + result.stderr
    assert f"CommandError: cannot reach Redis at addr=127.0.0.1:{port}, db=0" in output
    assert "memory" not in output.lower()


def _last_line(result: subprocess.CompletedProcess) -> str:
    assert result.returncode != 0
    assert "Traceback" not in result.stderr, result.stderr
    return [line for line in result.stderr.splitlines() if line.strip()][-1]


@pytest.mark.parametrize(
    ("command", "url", "expected"),
    [
        ("serve", "redis://127.0.0.1:notaport", "A2A_QUEUE_URL='redis://127.0.0.1:notaport' is invalid: the port 'notaport' is not a number from 1 to 65535"),
        ("runworker", "redis://127.0.0.1:99999", "A2A_QUEUE_URL='redis://127.0.0.1:99999' is invalid: the port '99999' is not a number from 1 to 65535"),
        ("cleanup_tasks", "redis://[::1:6393", "A2A_QUEUE_URL='redis://[::1:6393' is invalid: the host is not valid (an IPv6 address goes in brackets: [::1]:6379)"),
        ("serve", "redis://127.0.0.1:6393?foo=bar", "A2A_QUEUE_URL='redis://127.0.0.1:6393?foo=bar' is invalid: a redis:// URL takes no query option 'foo': expected db, "),
        ("runworker", "redis://127.0.0.1:6393?foo=bar", "is invalid: a redis:// URL takes no query option 'foo'"),
        ("cleanup_tasks", "redis://127.0.0.1:6393?socket_timeout=abc", "is invalid: the query option socket_timeout='abc' is not a number of seconds above 0"),
        ("serve", "redis://", "A2A_QUEUE_URL='redis://' is invalid: the URL names no host"),
        ("runworker", "redis://127.0.0.1:6393/abc", "A2A_QUEUE_URL='redis://127.0.0.1:6393/abc' is invalid: the database after the host must be a number, not 'abc'"),
        ("serve", "redis://app:pw-in-url@127.0.0.1:notaport", "A2A_QUEUE_URL='redis://***@127.0.0.1:notaport' is invalid: the port 'notaport'"),
    ],
)
def test_a_malformed_queue_url_stops_the_command_with_one_line(command, url, expected, tmp_path):
    line = _last_line(manage(command, env=base_env(url, str(tmp_path))))
    assert line.startswith("CommandError: A2A_QUEUE_URL=") and expected in line
    assert "pw-in-url" not in line


def test_an_unreachable_sentinel_is_reported_without_its_password(tmp_path):
    """redis-py's MasterNotFoundError quotes each sentinel client's repr, password and all."""
    port = free_port()
    env = base_env(f"redis+sentinel://:SENTPW-1@127.0.0.1:{port}/mymaster/0", str(tmp_path), A2A_QUEUE_OPTIONS_MAX_RETRIES="1", A2A_QUEUE_OPTIONS_TIMEOUT="500ms")
    result = manage("runworker", env={**env, "A2A_QUEUE_CREDENTIALS_PASSWORD": "DATAPW-2"})
    assert _last_line(result).startswith(f"CommandError: cannot reach Redis at addr=127.0.0.1:{port}, db=0: no Redis Sentinel named a master for 'mymaster': Error ")
    assert "Redis not reachable, retrying" in result.stderr  # the warning line goes through the same cleaning
    assert "SENTPW" not in result.stdout + result.stderr and "DATAPW" not in result.stdout + result.stderr


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        (
            {"A2A_PUBLIC_URL": "notaurl"},
            "CommandError: A2A_PUBLIC_URL='notaurl' is invalid: expected the base URL clients use: http:// or https://, a host and an optional path, such as https://agents.example.com",
        ),
        (
            {"A2A_AUTH_TOKENS": "alice:tok-shared,bob:tok-shared"},
            "CommandError: A2A_AUTH_TOKENS is invalid: one token is given to two identities, alice and bob: expected each identity to have tokens of its own",
        ),
    ],
)
def test_a_bad_public_url_or_shared_token_stops_serve_with_one_line(env, expected, redis_url, tmp_path):
    result = manage("serve", env=base_env(redis_url, str(tmp_path), **env))
    assert _last_line(result) == expected
    assert "tok-shared" not in result.stderr


async def test_separate_runworker_processes_a_task(processes, store, redis_url):
    worker = processes.worker(redis_url)
    record, _ = await store.create_task(user_message("hello worker"))
    done = await eventually(lambda: _finished(store, record.id), message="the task to finish")
    assert done.task["status"]["state"] == "TASK_STATE_COMPLETED"
    assert done.task["artifacts"][0]["parts"][0]["text"].endswith("Original input: hello worker")
    assert await store.redis.llen("a2a:queue") == 0
    assert await store.redis.exists(f"a2a:deadletter:{record.id}") and not await store.redis.exists(f"a2a:active:{record.id}")
    port = redis_url.split(":")[2].split("/")[0]
    await eventually(lambda: f"Task completed successfully, task_id={record.id}" in worker.output, message="the completion log line")
    assert f"Connected to Redis, addr=127.0.0.1:{port}, db=0" in worker.output
    assert f"Task dequeued for processing, task_id={record.id}, remaining_queue_length=0" in worker.output


# What a worker never uses, and loaded only for its start-up to pay: Django itself, daphne
# (and Twisted, whose reactor it installs), the protocol codecs with the SDK's 0.3 compat
# types, the dashboard, channels, and httpx for push notifications nobody asked for.
NOT_FOR_A_WORKER = ("django", "daphne", "twisted", "queueapp.protocol", "a2a.compat", "dashboard", "channels", "httpx")


async def test_a_worker_loads_only_what_it_needs_to_run_tasks(processes, store, redis_url):
    worker = processes.worker(redis_url, PYTHONPROFILEIMPORTTIME="1")  # every import on its stderr
    record, _ = await store.create_task(user_message("hello lean worker"))
    done = await eventually(lambda: _finished(store, record.id), message="the task to finish")
    assert done.task["status"]["state"] == "TASK_STATE_COMPLETED"

    imported = {line.rsplit("|", 1)[1].strip() for line in worker.output.splitlines() if line.startswith("import time:") and "|" in line}
    assert {"queueapp.worker", "queueapp.store", "redis"} <= imported  # the list is complete enough to judge
    assert sorted(name for name in imported if any(name == m or name.startswith(f"{m}.") for m in NOT_FOR_A_WORKER)) == []


def test_runworker_through_django_runs_the_same_worker_code(tmp_path):
    # `django-admin runworker` (not manage.py, which starts the worker without Django)
    env = {**base_env(None, str(tmp_path), A2A_QUEUE_PROVIDER="memory"), "DJANGO_SETTINGS_MODULE": "a2a_site.settings"}
    result = subprocess.run([sys.executable, "-m", "django", "runworker"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1].startswith("CommandError: A2A_QUEUE_PROVIDER=memory keeps the queue inside one process")
    help_text = subprocess.run([sys.executable, "-m", "django", "runworker", "--help"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60).stdout
    assert "A2A queue worker" in help_text and "--concurrency" in help_text and "--agent" in help_text


async def _finished(store: QueueStore, task_id: str):
    record = await store.get(task_id)
    return record if record is not None and record.finished else None


async def test_stopped_serve_processes_queued_tasks_after_restart(processes, store, redis_url):
    server = processes.serve(redis_url)
    assert "A2A server starting with Redis storage" in server.output
    assert server.stop() == 0
    ids = await submit(store, 20, "queued while the server was down")
    assert await store.redis.llen("a2a:queue") == 20
    processes.serve(redis_url)
    for task_id in ids:
        record = await eventually(lambda task_id=task_id: _finished(store, task_id), timeout=30, message="queued tasks to finish")
        assert record.task["status"]["state"] == "TASK_STATE_COMPLETED"


async def test_memory_provider_serves_but_runworker_refuses(processes, tmp_path):
    server = processes.serve(None, A2A_QUEUE_PROVIDER="memory")
    assert httpx.get(f"{server.url}/health").json() == {"status": "healthy"}
    assert "nothing persists" in server.output
    assert "A2A server starting with in-memory storage" in server.output
    result = manage("runworker", env=base_env(None, str(tmp_path), A2A_QUEUE_PROVIDER="memory"))
    assert result.returncode != 0
    assert "A2A_QUEUE_PROVIDER=memory keeps the queue inside one process" in result.stderr


async def test_embedded_redis_is_shared_and_keeps_data_across_restarts(processes, make_config):
    cfg = make_config(A2A_DATA_DIR=processes.data_dir)
    try:
        server = processes.serve(None, A2A_EMBEDDED_WORKERS="0")
        assert "A2A server starting with embedded Redis storage" in server.output
        assert httpx.get(f"{server.url}/health").json() == {"status": "healthy"}
        socket_path = embedded_socket(cfg)
        assert socket_path.exists()
        worker = processes.worker(None)
        client = aioredis.Redis(unix_socket_path=str(socket_path), **STORE_OPTIONS)
        store = QueueStore(client, Keys())
        await eventually(lambda: client.zcard("a2a:workers"), message="the separate worker to register")
        record, _ = await store.create_task(user_message("kept on disk"))
        finished = await eventually(lambda: _finished(store, record.id), message="the separate worker to finish the task")
        assert finished.worker and f":{worker.process.pid}:" in finished.worker
        await client.aclose()

        assert worker.stop() == 0 and server.stop() == 0
        stop_embedded_server(cfg)  # the whole system down, Redis included
        await eventually(lambda: not _pingable(socket_path), message="the embedded Redis to stop")

        again = processes.serve(None, A2A_EMBEDDED_WORKERS="0")
        assert httpx.get(f"{again.url}/health").status_code == 200
        client = aioredis.Redis(unix_socket_path=str(socket_path), **STORE_OPTIONS)
        survived = await QueueStore(client, Keys()).get(record.id)
        await client.aclose()
        assert survived is not None and survived.finished and survived.state.value == "completed"
    finally:
        stop_embedded_server(cfg)


def _pingable(path) -> bool:
    import redis

    try:
        return bool(redis.Redis(unix_socket_path=str(path), socket_timeout=0.5).ping())
    except (redis.RedisError, OSError):
        return False


def test_cleanup_tasks_reports_nothing_on_an_empty_history(redis_url, tmp_path):
    result = manage("cleanup_tasks", "--dry-run", env=base_env(redis_url, str(tmp_path)))
    assert result.returncode == 0, result.stderr
    assert "Would remove nothing" in result.stdout


async def test_runworker_stops_at_once_on_a_second_signal(processes, redis_url, store):
    worker = processes.worker(redis_url, A2A_AGENT="demo", A2A_WORKER_SHUTDOWN_GRACE="25s")
    running = (await submit(store, 1, "sleep 30"))[0]
    client = sync_client(store)
    await eventually(lambda: states(client, [running])[running] == "working", message="the task to run")
    worker.signal(signal.SIGTERM)
    await eventually(lambda: "Worker stopping: no new claims" in worker.output, message="the first signal to be seen")
    started = time.monotonic()
    worker.signal(signal.SIGINT)
    assert worker.wait(20) == 0
    assert time.monotonic() - started < 10  # not the 25 s grace
    assert states(client, [running])[running] == "submitted"
    assert client.lindex("a2a:queue", -1) == running  # at the front: the next one taken
    assert "Worker stopping now: running tasks go back to the queue" in worker.output


async def test_backfill_owners_indexes_old_owned_tasks(redis_url, tmp_path, store):
    record, _ = await store.create_task(user_message("old"), identity="alice")
    await store.redis.delete(store.keys.index_owner_active("alice"), store.keys.context_owners)
    result = manage("backfill_owners", env=base_env(redis_url, str(tmp_path)))
    assert result.returncode == 0, result.stderr
    assert "Checked 1 owned task: each is in its owner's indexes" in result.stdout
    assert [r.id for r in (await store.list_tasks(owner="alice")).items] == [record.id]
