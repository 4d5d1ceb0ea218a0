"""Ownership through a live server: with auth on, another identity cannot touch Alice's things.

Alice has a task waiting for her input, in her own context, with a push config carrying a
secret. Bob, with his own valid token, tries everything on it over JSON-RPC and HTTP+JSON,
in 1.0 and 0.3, and must get exactly what he gets for an id that does not exist. The admin
identity (A2A_AUTH_ADMIN_IDENTITIES) sees and acts on every task.
"""

from __future__ import annotations

import re
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from queueapp.model import new_id
from tests.protocol.conftest import Live, start_live

TOKENS = {"alice": "alice-token-1", "bob": "bob-token-2", "ops": "ops-token-3"}
SECRET = "alice-webhook-secret"
HOOK = "http://127.0.0.1:9/hook"
BINDINGS = ["jsonrpc-1.0", "jsonrpc-0.3", "rest-1.0", "rest-0.3"]


@pytest.fixture(scope="module")
def live() -> Iterator[Live]:
    with tempfile.TemporaryDirectory(prefix="a2a-owners-") as folder:
        server = start_live(
            Path(folder),
            A2A_AUTH_TOKENS=",".join(f"{name}:{token}" for name, token in TOKENS.items()),
            A2A_AUTH_ADMIN_IDENTITIES="ops",
        )
        yield server
        server.serve.stop()
        server.redis.stop()


def auth(who: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {TOKENS[who]}"}


def message(text: str, version: str, **ids: str) -> dict:
    """A user message in the JSON-RPC spelling of ``version`` (ids: taskId, contextId, messageId)."""
    ids = {"messageId": new_id(), **{key: value for key, value in ids.items() if value}}
    if version == "0.3":
        return {"kind": "message", "role": "user", "parts": [{"kind": "text", "text": text}], **ids}
    return {"role": "ROLE_USER", "parts": [{"text": text}], **ids}


class Caller:
    """One identity on one binding and version, with one call per RPC."""

    def __init__(self, live: Live, who: str, binding: str):
        self.live, self.who = live, who
        self.kind, self.version = binding.split("-")

    def rpc(self, v10: str, v03: str, params: dict) -> httpx.Response:
        return self.live.rpc(v10 if self.version == "1.0" else v03, params, version=self.version, headers=auth(self.who))

    def rest(self, method: str, path: str, body: dict | None = None, query: dict | None = None) -> httpx.Response:
        prefix = "" if self.version == "1.0" else "v1/"
        headers = {"A2A-Version": self.version, **auth(self.who)}
        return httpx.request(method, f"{self.live.url}/{prefix}{path}", json=body, params=query, headers=headers, timeout=30)

    def send(self, text: str, **ids: str) -> httpx.Response:
        if self.kind == "jsonrpc":
            return self.rpc("SendMessage", "message/send", {"message": message(text, self.version, **ids)})
        if self.version == "1.0":
            return self.rest("POST", "message:send", {"message": message(text, "1.0", **ids)})
        body = {"messageId": new_id(), "role": "ROLE_USER", "content": [{"text": text}], **{k: v for k, v in ids.items() if v}}
        return self.rest("POST", "message:send", {"request": body})

    def get(self, task_id: str) -> httpx.Response:
        return self.rpc("GetTask", "tasks/get", {"id": task_id}) if self.kind == "jsonrpc" else self.rest("GET", f"tasks/{task_id}")

    def cancel(self, task_id: str) -> httpx.Response:
        return self.rpc("CancelTask", "tasks/cancel", {"id": task_id}) if self.kind == "jsonrpc" else self.rest("POST", f"tasks/{task_id}:cancel")

    def subscribe(self, task_id: str) -> httpx.Response:
        if self.kind == "jsonrpc":
            return self.rpc("SubscribeToTask", "tasks/resubscribe", {"id": task_id})
        return self.rest("GET", f"tasks/{task_id}:subscribe")

    def list_tasks(self, **query: str) -> httpx.Response:
        return self.rpc("ListTasks", "tasks/list", query) if self.kind == "jsonrpc" else self.rest("GET", "tasks", query=query)

    def list_configs(self, task_id: str) -> httpx.Response:
        if self.kind == "jsonrpc":
            return self.rpc("ListTaskPushNotificationConfigs", "tasks/pushNotificationConfig/list", {"taskId" if self.version == "1.0" else "id": task_id})
        return self.rest("GET", f"tasks/{task_id}/pushNotificationConfigs")

    def get_config(self, task_id: str, config_id: str) -> httpx.Response:
        if self.kind == "jsonrpc":
            params = {"taskId": task_id, "id": config_id} if self.version == "1.0" else {"id": task_id, "pushNotificationConfigId": config_id}
            return self.rpc("GetTaskPushNotificationConfig", "tasks/pushNotificationConfig/get", params)
        return self.rest("GET", f"tasks/{task_id}/pushNotificationConfigs/{config_id}")

    def delete_config(self, task_id: str, config_id: str) -> httpx.Response:
        if self.kind == "jsonrpc":
            params = {"taskId": task_id, "id": config_id} if self.version == "1.0" else {"id": task_id, "pushNotificationConfigId": config_id}
            return self.rpc("DeleteTaskPushNotificationConfig", "tasks/pushNotificationConfig/delete", params)
        return self.rest("DELETE", f"tasks/{task_id}/pushNotificationConfigs/{config_id}")

    def create_config(self, task_id: str, config_id: str, url: str = HOOK) -> httpx.Response:
        if self.kind == "jsonrpc" and self.version == "1.0":
            return self.rpc("CreateTaskPushNotificationConfig", "", {"taskId": task_id, "id": config_id, "url": url, "token": f"{self.who}-token"})
        if self.kind == "jsonrpc":
            params = {"taskId": task_id, "pushNotificationConfig": {"id": config_id, "url": url, "token": f"{self.who}-token"}}
            return self.rpc("", "tasks/pushNotificationConfig/set", params)
        if self.version == "1.0":
            return self.rest("POST", f"tasks/{task_id}/pushNotificationConfigs", {"id": config_id, "url": url, "token": f"{self.who}-token"})
        body = {"configId": config_id, "config": {"pushNotificationConfig": {"id": config_id, "url": url, "token": f"{self.who}-token"}}}
        return self.rest("POST", f"tasks/{task_id}/pushNotificationConfigs", body)


def result(response: httpx.Response) -> dict:
    assert response.status_code == 200, response.text
    body = response.json()
    return body["result"] if "jsonrpc" in body else body


def task_of(response: httpx.Response) -> dict:
    body = result(response)
    return body.get("task", body)


def state_of(task: dict) -> str:
    return task["status"]["state"].removeprefix("TASK_STATE_").lower().replace("_", "-").replace("cancelled", "canceled")


def listed_ids(response: httpx.Response) -> list[str]:
    return [task["id"] for task in result(response).get("tasks", [])]


def same_as_missing(response: httpx.Response, for_missing: httpx.Response, *ids: str) -> str:
    """The answer with the ids blanked out; asserts it equals the one for ids that do not exist."""
    seen, missing = response.text, for_missing.text
    for n, value in enumerate(ids):
        seen = seen.replace(value, f"<id{n}>")
    missing = re.sub(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", "<id0>", missing)
    seen = re.sub(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", "<id0>", seen)
    assert (response.status_code, seen) == (for_missing.status_code, missing)
    return seen


@pytest.fixture
def alice(live) -> dict:
    """Alice's task, waiting for her input, in her own context, with a push config holding a secret."""
    caller = Caller(live, "alice", "jsonrpc-1.0")
    task = task_of(caller.send("ask what colour?"))
    assert state_of(task) == "input-required"
    config_id = f"alice-hook-{new_id()[-8:]}"
    result(live.rpc("CreateTaskPushNotificationConfig", {"taskId": task["id"], "id": config_id, "url": HOOK, "token": SECRET}, headers=auth("alice")))
    return {"task": task, "config_id": config_id, "message_id": task["history"][0]["messageId"]}


def alice_sees(live, alice: dict) -> tuple[dict, list[dict]]:
    caller = Caller(live, "alice", "jsonrpc-1.0")
    task = task_of(caller.get(alice["task"]["id"]))
    configs = result(caller.list_configs(alice["task"]["id"]))["configs"]
    return task, configs


@pytest.mark.parametrize("binding", BINDINGS)
def test_another_identity_gets_task_not_found_for_everything_on_a_task(live, alice, binding):
    bob = Caller(live, "bob", binding)
    task_id, context_id, config_id = alice["task"]["id"], alice["task"]["contextId"], alice["config_id"]
    missing = new_id()
    calls: dict[str, Callable[[str], httpx.Response]] = {
        "get": bob.get,
        "cancel": bob.cancel,
        "subscribe": bob.subscribe,
        "list push configs": bob.list_configs,
        "get push config": lambda tid: bob.get_config(tid, config_id),
        "delete push config": lambda tid: bob.delete_config(tid, config_id),
        "add push config": lambda tid: bob.create_config(tid, "bobs-hook"),
        "continue the task": lambda tid: bob.send("blue", taskId=tid),
    }
    for name, call in calls.items():
        seen = call(task_id)
        assert seen.status_code in (200, 404), (name, seen.text)
        text = same_as_missing(seen, call(missing), task_id)
        assert SECRET not in seen.text and "ask what colour" not in seen.text, name
        assert "TaskNotFound" in text or "TASK_NOT_FOUND" in text or "-32001" in text, (name, text)
    task, configs = alice_sees(live, alice)
    assert state_of(task) == "input-required" and task["history"] == alice["task"]["history"]
    assert [(c["id"], c["token"]) for c in configs] == [(config_id, SECRET)]
    assert context_id == task["contextId"]


@pytest.mark.parametrize("binding", BINDINGS)
def test_another_identity_lists_none_of_her_tasks(live, alice, binding):
    bob = Caller(live, "bob", binding)
    task_id, context_id = alice["task"]["id"], alice["task"]["contextId"]
    assert task_id not in listed_ids(bob.list_tasks())
    in_her_context = bob.list_tasks(contextId=context_id)
    assert listed_ids(in_her_context) == [] and result(in_her_context).get("totalSize", 0) == 0
    same_as_missing(in_her_context, bob.list_tasks(contextId=new_id()), context_id)
    assert task_id in listed_ids(Caller(live, "alice", binding).list_tasks(contextId=context_id))


@pytest.mark.parametrize("binding", BINDINGS)
def test_a_message_into_her_context_is_refused_like_an_unknown_context(live, alice, binding):
    bob = Caller(live, "bob", binding)
    context_id = alice["task"]["contextId"]
    joined = bob.send("tell me what she said", contextId=context_id)
    replayed = bob.send("ask what colour?", contextId=context_id, messageId=alice["message_id"])
    for seen in (joined, replayed):
        text = same_as_missing(seen, bob.send("x", contextId=new_id()), context_id)
        assert seen.status_code in (200, 400) and ("-32602" in text or "INVALID" in text), text
        assert alice["task"]["id"] not in seen.text
    owner = Caller(live, "alice", binding)
    assert listed_ids(owner.list_tasks(contextId=context_id)) == [alice["task"]["id"]]  # nothing joined her conversation
    # Her own context takes her next message, and her repeated message id finds her task.
    assert task_of(owner.send("more", contextId=context_id))["contextId"] == context_id
    assert task_of(owner.send("ask what colour?", contextId=context_id, messageId=alice["message_id"]))["id"] == alice["task"]["id"]


@pytest.mark.parametrize("binding", ["jsonrpc-1.0", "rest-0.3"])
def test_the_admin_identity_sees_and_acts_on_every_task(live, alice, binding):
    ops = Caller(live, "ops", binding)
    task_id = alice["task"]["id"]
    bobs = task_of(Caller(live, "bob", "jsonrpc-1.0").send("hello from bob"))["id"]
    assert {task_id, bobs} <= set(listed_ids(ops.list_tasks(pageSize="100" if binding.startswith("rest") else 100)))
    assert task_of(ops.get(task_id))["id"] == task_id
    assert alice["config_id"] in ops.list_configs(task_id).text and SECRET in ops.list_configs(task_id).text
    result(ops.create_config(task_id, "ops-hook"))
    assert "ops-hook" in ops.list_configs(task_id).text
    _, configs = alice_sees(live, alice)
    assert [c["id"] for c in configs] == [alice["config_id"]]  # the admin's own config stays the admin's
    canceled = task_of(ops.cancel(task_id))
    assert state_of(canceled) == "canceled"
    assert state_of(alice_sees(live, alice)[0]) == "canceled"


@pytest.mark.parametrize("binding", ["jsonrpc-1.0", "rest-0.3"])
def test_a_push_config_id_of_another_identity_is_not_taken_over(live, alice, binding):
    task_id, config_id = alice["task"]["id"], alice["config_id"]
    ops_hook = f"ops-hook-{new_id()[-8:]}"
    result(Caller(live, "ops", "jsonrpc-1.0").create_config(task_id, ops_hook))
    for who, taken in (("ops", config_id), ("alice", ops_hook)):
        refused = Caller(live, who, binding).create_config(task_id, taken, url="http://127.0.0.1:9/takeover")
        assert refused.status_code in (200, 400) and ("-32602" in refused.text or "INVALID" in refused.text), refused.text
        assert f"{taken!r} is in use" in refused.text
    _, configs = alice_sees(live, alice)
    assert [(c["id"], c["token"], c["url"]) for c in configs] == [(config_id, SECRET, HOOK)]
    ops_configs = {c["id"]: c for c in result(Caller(live, "ops", "jsonrpc-1.0").list_configs(task_id))["configs"]}
    assert (ops_configs[ops_hook]["token"], ops_configs[ops_hook]["url"]) == ("ops-token", HOOK)
    # Its owner still replaces it.
    result(Caller(live, "alice", binding).create_config(task_id, config_id, url="http://127.0.0.1:9/moved"))
    assert [c["url"] for c in alice_sees(live, alice)[1]] == ["http://127.0.0.1:9/moved"]


def test_a_refused_message_leaves_no_push_config_behind(live, alice):
    redis = live.redis.client()
    before = set(redis.keys("a2a:push:*"))
    inline = {"taskPushNotificationConfig": {"url": HOOK, "token": "x" * 100_000}}
    for who, context_id in (("bob", alice["task"]["contextId"]), ("alice", new_id())):  # another's context, an unknown one
        params = {"message": message("hello", "1.0", contextId=context_id), "configuration": inline}
        refused = live.rpc("SendMessage", params, headers=auth(who))
        assert "-32602" in refused.text, refused.text
    assert set(redis.keys("a2a:push:*")) == before


@pytest.mark.parametrize("binding", ["jsonrpc-1.0", "rest-1.0"])
def test_her_task_is_not_read_for_another_identity(live, alice, binding):
    # Before, the whole task was read and decoded before its owner was checked: Bob's GetTask
    # of her task took longer than one of a missing id, the more so the larger her task.
    bob = Caller(live, "bob", binding)
    client = live.redis.client()
    client.config_resetstat()
    seen = bob.get(alice["task"]["id"])
    assert "TaskNotFound" in seen.text or "TASK_NOT_FOUND" in seen.text or "-32001" in seen.text, seen.text
    reads = client.info("commandstats")
    assert "cmdstat_hgetall" not in reads and "cmdstat_lrange" not in reads, sorted(reads)
    client.config_resetstat()
    Caller(live, "alice", binding).get(alice["task"]["id"])
    assert "cmdstat_hgetall" in client.info("commandstats")  # her own read does read it
