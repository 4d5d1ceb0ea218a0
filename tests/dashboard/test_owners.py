"""The dashboard shows each task's owner, filters by owner, and still shows staff every task."""

from __future__ import annotations

import pytest

from queueapp import model
from queueapp.states import TaskState
from tests.dashboard.support import login

pytestmark = pytest.mark.django_db(transaction=True)


async def owned(store, identity: str | None, text: str, *, finish: TaskState | None = None):
    record, _ = await store.create_task(model.message("user", [{"text": text}], message_id=model.new_id()), identity=identity)
    if finish is not None:
        record = await store.finish_unclaimed(await store.require(record.id), finish, "ended")
    return record


def owner_cells(page: str) -> list[str]:
    return [cell.split("</td>")[0] for cell in page.split('data-testid="owner">')[1:]]


async def test_lists_show_every_task_with_its_owner_and_filter_by_owner(server, users, dash_store):
    alice_done = await owned(dash_store, "alice", "alice finished", finish=TaskState.COMPLETED)
    bob_done = await owned(dash_store, "bob", "bob finished", finish=TaskState.FAILED)
    anonymous_done = await owned(dash_store, None, "made with auth off", finish=TaskState.COMPLETED)
    alice_waiting = await owned(dash_store, "alice", "alice waiting")
    bob_waiting = await owned(dash_store, "bob", "bob waiting")
    await users("boss", staff=True)
    client = await login(server, "boss")

    history = (await client.get("/dashboard/history/")).text
    for record in (alice_done, bob_done, anonymous_done):
        assert f"/dashboard/tasks/{record.id}/" in history  # staff still see everything
    cells = owner_cells(history)
    assert any(">alice<" in c for c in cells) and any(">bob<" in c for c in cells) and any("anonymous" in c for c in cells)
    assert 'href="/dashboard/history/?owner=alice"' in history

    only_alice = (await client.get("/dashboard/history/", params={"owner": "alice"})).text
    assert f"/dashboard/tasks/{alice_done.id}/" in only_alice and "(1 of alice)" in only_alice
    assert f"/dashboard/tasks/{bob_done.id}/" not in only_alice and f"/dashboard/tasks/{anonymous_done.id}/" not in only_alice
    bob_failed = (await client.get("/dashboard/history/", params={"owner": "bob", "state": "failed"})).text
    assert f"/dashboard/tasks/{bob_done.id}/" in bob_failed
    assert "No finished task here." in (await client.get("/dashboard/history/", params={"owner": "bob", "state": "completed"})).text

    active = (await client.get("/dashboard/active/")).text
    assert f"/dashboard/tasks/{alice_waiting.id}/" in active and f"/dashboard/tasks/{bob_waiting.id}/" in active
    only_bob = (await client.get("/dashboard/active/", params={"owner": "bob"})).text
    assert f"/dashboard/tasks/{bob_waiting.id}/" in only_bob and f"/dashboard/tasks/{alice_waiting.id}/" not in only_bob
    assert 'value="bob"' in only_bob  # the filter form keeps the owner

    task_page = (await client.get(f"/dashboard/tasks/{anonymous_done.id}/")).text
    assert 'data-testid="identity"><span class="anonymous">anonymous</span>' in task_page

    contexts = (await client.get("/dashboard/contexts/")).text
    assert contexts.count('data-testid="context-owner">') == 5 and contexts.count("?owner=alice") == 2
    context_page = (await client.get(f"/dashboard/contexts/{bob_done.context_id}/")).text
    assert 'data-testid="context-owner"><a href="/dashboard/history/?owner=bob">bob</a>' in context_page
    await client.aclose()


async def test_the_owner_filter_survives_paging_and_live_updates(server, users, dash_store):
    for n in range(55):
        await owned(dash_store, "carol", f"carol {n}", finish=TaskState.COMPLETED)
    await owned(dash_store, "dave", "dave", finish=TaskState.COMPLETED)
    await users("boss", staff=True)
    client = await login(server, "boss")
    first = (await client.get("/dashboard/history/", params={"owner": "carol"})).text
    assert "(55 of carol)" in first and "owner=carol&amp;cursor=" in first
    live = (await client.get("/dashboard/live/", params={"page": "history", "owner": "dave"})).text
    assert "(1 of dave)" in live
    await client.aclose()
