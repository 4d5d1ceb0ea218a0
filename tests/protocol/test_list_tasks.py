"""ListTasks: filters, cursor paging, totalSize, includeArtifacts, newest first; 1.0 client and 0.3 tasks/list."""

from __future__ import annotations

import httpx
import pytest
from a2a.types import a2a_pb2 as pb

from queueapp.model import new_id
from tests.protocol.conftest import official_client


@pytest.fixture(scope="module")
def context(live) -> tuple[str, list[str]]:
    """Three finished echo tasks in one fresh context, oldest first."""
    context_id, ids = new_id(), []
    for index in range(3):
        params = {"message": {"messageId": new_id(), "role": "ROLE_USER", "contextId": context_id, "parts": [{"text": f"item {index}"}]}}
        ids.append(live.rpc("SendMessage", params).json()["result"]["task"]["id"])
    return context_id, ids


@pytest.mark.parametrize("binding", ["JSONRPC", "HTTP+JSON"])
async def test_official_client_pages_newest_first(live, context, binding):
    context_id, ids = context
    client = await official_client(live.url, binding, "1.0", streaming=False)
    first = await client.list_tasks(pb.ListTasksRequest(context_id=context_id, page_size=2))
    assert [t.id for t in first.tasks] == [ids[2], ids[1]]
    assert first.total_size == 3 and first.page_size == 2 and first.next_page_token
    assert all(len(t.artifacts) == 0 for t in first.tasks)  # includeArtifacts defaults to false
    second = await client.list_tasks(pb.ListTasksRequest(context_id=context_id, page_size=2, page_token=first.next_page_token))
    assert [t.id for t in second.tasks] == [ids[0]]
    assert second.next_page_token == ""
    with_artifacts = await client.list_tasks(pb.ListTasksRequest(context_id=context_id, page_size=1, include_artifacts=True, history_length=0))
    assert with_artifacts.tasks[0].artifacts and not with_artifacts.tasks[0].history


def test_every_member_is_present_and_artifacts_key_is_absent(live, context):
    context_id, _ = context
    result = live.rpc("ListTasks", {"contextId": context_id, "pageSize": 5}).json()["result"]
    assert set(result) == {"tasks", "nextPageToken", "pageSize", "totalSize"}
    assert result["nextPageToken"] == "" and result["totalSize"] == 3
    assert all("artifacts" not in task for task in result["tasks"])


def test_status_filter_and_timestamp_filter(live, context):
    context_id, ids = context
    done = live.rpc("ListTasks", {"contextId": context_id, "status": "TASK_STATE_COMPLETED"}).json()["result"]
    assert done["totalSize"] == 3
    none = live.rpc("ListTasks", {"contextId": context_id, "status": "TASK_STATE_FAILED"}).json()["result"]
    assert none["tasks"] == [] and none["totalSize"] == 0
    middle = live.rpc("GetTask", {"id": ids[1]}).json()["result"]["status"]["timestamp"]
    newer = live.rpc("ListTasks", {"contextId": context_id, "statusTimestampAfter": middle}).json()["result"]
    assert [t["id"] for t in newer["tasks"]] == [ids[2]]
    assert newer["totalSize"] == 1


@pytest.mark.parametrize("page_size", [0, 101, -1])
def test_page_size_out_of_range_is_invalid_params(live, page_size):
    error = live.rpc("ListTasks", {"pageSize": page_size}).json()["error"]
    assert error["code"] == -32602
    assert "pageSize must be from 1 to 100" in error["message"]


def test_unknown_status_and_foreign_page_token_are_invalid_params(live):
    assert live.rpc("ListTasks", {"status": "TASK_STATE_SLEEPY"}).json()["error"]["code"] == -32602
    error = live.rpc("ListTasks", {"pageToken": "not-a-token"}).json()["error"]
    assert error["code"] == -32602 and "nextPageToken" in error["message"]


def test_v03_tasks_list_answers_in_03_spelling(live, context):
    context_id, ids = context
    body = {"jsonrpc": "2.0", "id": "l", "method": "tasks/list", "params": {"contextId": context_id, "status": "completed", "pageSize": 2}}
    result = httpx.post(f"{live.url}/a2a", json=body).json()["result"]
    assert [t["id"] for t in result["tasks"]] == [ids[2], ids[1]]
    assert {t["kind"] for t in result["tasks"]} == {"task"}
    assert {t["status"]["state"] for t in result["tasks"]} == {"completed"}
    assert result["totalSize"] == 3 and result["nextPageToken"]


def test_rest_list_reads_query_parameters(live, context):
    context_id, ids = context
    response = httpx.get(f"{live.url}/tasks", params={"contextId": context_id, "pageSize": "1", "includeArtifacts": "true"}, headers={"A2A-Version": "1.0"})
    result = response.json()
    assert [t["id"] for t in result["tasks"]] == [ids[2]] and result["tasks"][0]["artifacts"]
    bad = httpx.get(f"{live.url}/tasks", params={"pageSize": "lots"}, headers={"A2A-Version": "1.0"})
    assert bad.status_code == 400 and bad.json()["error"]["details"][0]["reason"] == "INVALID_PARAMS"
