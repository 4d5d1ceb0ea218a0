"""SubscribeToTask follows a task through input-required and closes on its terminal state (STREAM-SUB-002)."""

from __future__ import annotations

import asyncio

import httpx
import orjson
import pytest

from queueapp.model import new_id


def message(text: str, **extra) -> dict:
    return {"messageId": new_id(), "role": "ROLE_USER", "parts": [{"text": text}], **extra}


def state_of(frame: dict) -> str | None:
    event = frame.get("result", frame)
    for key in ("task", "statusUpdate"):
        if key in event:
            return event[key]["status"]["state"]
    return None


async def read_frames(client: httpx.AsyncClient, method: str, url: str, **kwargs) -> list[dict]:
    frames = []
    async with client.stream(method, url, headers={"A2A-Version": "1.0", "Content-Type": "application/json"}, **kwargs) as response:
        assert response.status_code == 200, await response.aread()
        async for line in response.aiter_lines():
            if line.startswith("data: "):
                frames.append(orjson.loads(line[6:]))
    return frames


@pytest.mark.parametrize("binding", ["jsonrpc", "http_json"])
async def test_subscription_to_an_input_required_task_ends_with_its_terminal_state(live, binding):
    first = live.rpc("SendMessage", {"message": message("ask What is your name?")}).json()["result"]["task"]
    assert first["status"]["state"] == "TASK_STATE_INPUT_REQUIRED"
    async with httpx.AsyncClient(base_url=live.url, timeout=30) as client:
        if binding == "jsonrpc":
            body = {"jsonrpc": "2.0", "id": 1, "method": "SubscribeToTask", "params": {"id": first["id"]}}
            reading = asyncio.create_task(read_frames(client, "POST", "/a2a", json=body))
        else:
            reading = asyncio.create_task(read_frames(client, "POST", f"/tasks/{first['id']}:subscribe"))
        await asyncio.sleep(1)  # the stream is open and has sent the task as it is
        assert not reading.done(), "the subscription closed on input-required"
        reply = live.rpc("SendMessage", {"message": message("Ada", taskId=first["id"], contextId=first["contextId"])}).json()["result"]["task"]
        assert reply["status"]["state"] == "TASK_STATE_COMPLETED"
        frames = await asyncio.wait_for(reading, 20)
    states = [state_of(frame) for frame in frames]
    assert states[0] == "TASK_STATE_INPUT_REQUIRED"
    assert states[-1] == "TASK_STATE_COMPLETED"
