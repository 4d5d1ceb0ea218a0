"""The demo client, ``manage.py a2a_client``, against a live ``serve`` on a real Redis."""

from __future__ import annotations

import io
import re

import pytest
from django.core.management import CommandError, call_command

from queueapp.client.progress import Display, Tracked, reply_text
from queueapp.states import TaskState
from tests.support import free_port

SUBMITTED = re.compile(r"Task submitted successfully, task_id=([0-9a-f-]{36}), context_id=([0-9a-f-]{36})")


def run_client(processes, redis_url: str, *args: str, **env: str):
    proc = processes.command(redis_url, "a2a_client", *args, **env)
    code = proc.wait(120)
    return code, proc.output


@pytest.mark.parametrize("protocol", ["1.0", "0.3"])
@pytest.mark.parametrize("mode", [[], ["--stream"]], ids=["poll", "stream"])
def test_every_sample_task_completes(processes, redis_url, redis_server, protocol, mode):
    server = processes.serve(redis_url)
    code, output = run_client(processes, redis_url, "--url", server.url, "--count", "3", "--protocol", protocol, *mode)

    assert code == 0, output
    assert output.count("Submitting task to Redis queue") == 3
    submitted = SUBMITTED.findall(output)
    assert len(submitted) == 3
    assert len({context for _, context in submitted}) == 3  # each task in its own context
    assert output.count("Task status: completed") == 3
    assert output.count("History length: 2") == 3
    assert "Reply: Task processed successfully using Redis queue storage." in output
    assert "All 3 tasks completed" in output
    redis = redis_server.client()
    for task_id, context_id in submitted:
        assert redis.zscore(f"a2a:idx:context:{context_id}", task_id) is not None
        assert redis.exists(f"a2a:deadletter:{task_id}")


@pytest.mark.parametrize("mode", [[], ["--stream"]], ids=["poll", "stream"])
def test_grpc_transport_runs_the_samples_through_the_sdks_grpc_client(processes, redis_url, mode):
    server = processes.serve(redis_url)
    code, output = run_client(processes, redis_url, "--url", server.url, "--count", "2", "--transport", "grpc", *mode)

    assert code == 0, output
    assert "transport=grpc" in output
    assert len(SUBMITTED.findall(output)) == 2
    assert output.count("Task status: completed") == 2
    assert output.count("History length: 2") == 2  # the final task, read back with GetTask over gRPC


@pytest.mark.parametrize(("token", "message"), [([], "Authentication required"), (["--token", "wrong"], "The credential is not valid")])
def test_grpc_transport_sends_the_token_as_call_metadata(processes, redis_url, token, message):
    server = processes.serve(redis_url, A2A_AUTH_TOKENS="demo:s3cret-token")
    code, output = run_client(processes, redis_url, "--url", server.url, "--count", "1", "--transport", "grpc", *token)
    assert code != 0
    assert "SendMessage failed over gRPC" in output and message in output

    code, output = run_client(processes, redis_url, "--url", server.url, "--count", "1", "--transport", "grpc", "--stream", "--token", "s3cret-token")
    assert code == 0, output
    assert "Task status: completed" in output


def test_grpc_transport_explains_a_server_without_grpc(processes, redis_url):
    server = processes.serve(redis_url, A2A_GRPC_PORT="0")
    code, output = run_client(processes, redis_url, "--url", server.url, "--transport", "grpc")
    assert code != 0
    assert "declares no gRPC interface" in output


def test_own_text_in_one_context(processes, redis_url, redis_server):
    server = processes.serve(redis_url)
    context = "11111111-2222-3333-4444-555555555555"
    code, output = run_client(processes, redis_url, "--url", server.url, "--text", "hello there", "--count", "2", "--context", context)
    assert code == 0, output
    assert output.count("text='hello there'") == 2
    assert redis_server.client().zcard(f"a2a:idx:context:{context}") == 2


def test_url_defaults_from_the_server_settings_and_text_is_sent_once(processes, redis_url, redis_server):
    server = processes.serve(redis_url)
    # No --url: the client finds the server where A2A_SERVER_PORT puts it, as serve does.
    code, output = run_client(processes, redis_url, "--text", "just once", A2A_SERVER_PORT=str(server.port))
    assert code == 0, output
    assert f"Waiting for the server, url=http://127.0.0.1:{server.port}" in output
    assert output.count("text='just once'") == 1
    assert "The task completed" in output


def test_url_defaults_to_the_public_url_when_set(processes, redis_url):
    server = processes.serve(redis_url)
    code, output = run_client(processes, redis_url, "--count", "1", A2A_PUBLIC_URL=f"{server.url}/", A2A_SERVER_PORT="1")
    assert code == 0, output
    assert f"Waiting for the server, url={server.url}\n" in output


def test_a_failed_task_makes_the_exit_code_non_zero(processes, redis_url):
    server = processes.serve(redis_url, A2A_AGENT="demo")
    code, output = run_client(processes, redis_url, "--url", server.url, "--text", "fail disk is full", "--count", "1", "--stream")
    assert code != 0
    assert "Task status: failed" in output
    assert "Reply: disk is full" in output
    assert "1 of 1 tasks did not complete" in output


def test_a_task_waiting_for_input_is_not_a_success(processes, redis_url):
    server = processes.serve(redis_url, A2A_AGENT="demo")
    code, output = run_client(processes, redis_url, "--url", server.url, "--text", "ask Which region?", "--count", "1")
    assert code != 0
    assert "Task status: input-required" in output
    assert "Reply: Which region?" in output


def test_token_is_sent_and_a_missing_one_is_explained(processes, redis_url):
    server = processes.serve(redis_url, A2A_AUTH_TOKENS="demo:s3cret-token")
    code, output = run_client(processes, redis_url, "--url", server.url, "--count", "1", "--token", "s3cret-token")
    assert code == 0, output
    assert "Task status: completed" in output

    code, output = run_client(processes, redis_url, "--url", server.url, "--count", "1")
    assert code != 0
    assert "the server needs a credential (HTTP 401); pass a valid --token" in output


def test_gives_up_when_the_server_never_becomes_healthy(processes, redis_url):
    url = f"http://127.0.0.1:{free_port()}"
    code, output = run_client(processes, redis_url, "--url", url, "--wait", "2")
    assert code != 0
    assert "Server not ready, attempt=1/2" in output
    assert f"The server at {url} is not healthy after 2 attempts" in output
    assert "Submitting task" not in output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--protocol", "2.0"], "invalid choice: '2.0'"),
        (["--count", "0"], "expected 1 or more"),
        (["--count", "many"], "expected a whole number"),
        (["--url", "ftp://example.com"], "expected an http:// or https:// url"),
        (["--transport", "grpc", "--protocol", "0.3"], "--transport grpc speaks A2A 1.0 only"),
    ],
)
def test_bad_options_are_refused(args, message):
    with pytest.raises(CommandError, match=re.escape(message)):
        call_command("a2a_client", *args)


# ---- the display ------------------------------------------------------------------------


def test_plain_output_logs_each_change_once():
    out = io.StringIO()
    display = Display(out, live=False)
    item = Tracked(number=1, text="x", context_id="c", task_id="t-1")
    display.update(item)
    display.update(item)
    item.apply_status({"state": "TASK_STATE_WORKING", "message": {"role": "ROLE_AGENT", "parts": [{"text": "half way"}]}})
    display.update(item)
    lines = out.getvalue().splitlines()
    assert len(lines) == 2
    assert lines[1].endswith("Task update, task_id=t-1, state=working, message='half way'")
    assert "\x1b[" not in out.getvalue()


def test_live_output_redraws_the_progress_block_in_place():
    out = io.StringIO()
    display = Display(out, live=True)
    first, second = Tracked(number=1, text="a", context_id="c", task_id="01a22a43-0000-7000-8000-0000aaaaaaaa"), Tracked(number=2, text="b", context_id="c", task_id="01a22a43-0000-7001-8000-0000bbbbbbbb")
    display.tracked = [first, second]
    display.update(first)
    first.apply_status({"state": "working", "message": {"role": "agent", "parts": [{"kind": "text", "text": "busy"}], "metadata": {"progress": 0.5}}})
    display.update(first)
    second.apply_task({"id": "01a22a43-0000-7001-8000-0000bbbbbbbb", "status": {"state": "completed"}, "history": [{"role": "ROLE_AGENT", "parts": [{"text": "all done"}]}]})
    display.update(second)
    text = out.getvalue()
    assert text.count("\x1b[2F\x1b[J") == 2  # the block of two lines was redrawn twice
    final = text.rsplit("\x1b[J", 1)[1].splitlines()
    assert "aaaaaaaa working" in final[0] and "[#####.....]  50%" in final[0] and "busy" in final[0]
    assert final[1].lstrip().startswith("done  2. bbbbbbbb completed")
    assert second.reply == "all done" and second.state is TaskState.COMPLETED


def test_reply_text_prefers_the_agent_message_then_artifacts():
    assert reply_text({"status": {"state": "completed", "message": {"role": "ROLE_AGENT", "parts": [{"text": "hi"}]}}}) == "hi"
    assert reply_text({"status": {"state": "completed"}, "history": [{"role": "user", "parts": [{"text": "q"}]}], "artifacts": [{"parts": [{"text": "art"}]}]}) == "art"


def test_the_readmes_sleep_example_works_as_the_readme_says(processes, redis_url):
    """README: ``a2a_client --text "sleep 3" --protocol 0.3``, with the server started on the demo agent."""
    from tests.support import ROOT

    readme = (ROOT / "README.md").read_text()
    [line] = [line for line in readme.splitlines() if '--text "sleep 3"' in line]
    args = line.split("manage.py ", 1)[1].replace('"sleep 3"', "sleep-3").split()
    args = [arg.replace("sleep-3", "sleep 3") for arg in args]
    after = readme.split(line, 1)[1][:400]
    assert "A2A_AGENT=demo" in after  # said where the example is
    server = processes.serve(redis_url, A2A_AGENT="demo")
    code, output = run_client(processes, redis_url, *args[1:], A2A_SERVER_PORT=str(server.port))
    assert code == 0, output
    assert "state=working" in output and "The task completed" in output
