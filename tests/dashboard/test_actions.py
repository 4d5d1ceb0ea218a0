"""Staff actions: who may act, CSRF, no change on GET, read-only and public modes, logging."""

from __future__ import annotations

import logging

import httpx
import pytest

from queueapp.states import TaskState
from tests.dashboard.support import csrf_from, login, submit

pytestmark = pytest.mark.django_db(transaction=True)


async def form_token(client: httpx.AsyncClient) -> str:
    """The CSRF token of the page's action form (what a browser would post)."""
    return csrf_from((await client.get("/dashboard/history/")).text)


async def failed(store, text="fail"):
    record = await submit(store, text)
    return await store.finish_unclaimed(await store.require(record.id), TaskState.FAILED, "boom")


async def staff(server, users):
    await users("boss", staff=True)
    client = await login(server, "boss")
    return client, await form_token(client)


async def test_staff_cancels_a_waiting_task_and_the_action_is_logged(server, users, dash_store, caplog):
    record = await submit(dash_store, "wait")
    client, token = await staff(server, users)
    with caplog.at_level(logging.INFO, logger="dashboard.actions"):
        response = await client.post(f"/dashboard/actions/cancel/{record.id}/", data={"csrfmiddlewaretoken": token, "next": "/dashboard/queue/"})
    assert response.status_code == 302 and response.headers["location"] == "/dashboard/queue/"
    assert (await dash_store.require(record.id)).state is TaskState.CANCELED
    assert f"user=boss, action=cancel, task_id={record.id}" in caplog.text
    followed = await client.get("/dashboard/queue/")
    assert f"Cancel requested for task {record.id}." in followed.text
    await client.aclose()


async def test_staff_retries_and_deletes_finished_tasks(server, users, dash_store):
    record = await failed(dash_store)
    client, token = await staff(server, users)
    response = await client.post(f"/dashboard/actions/retry/{record.id}/", data={"csrfmiddlewaretoken": token})
    assert response.status_code == 302 and response.headers["location"] == f"/dashboard/tasks/{record.id}/"
    retried = await dash_store.require(record.id)
    assert retried.state is TaskState.SUBMITTED and not retried.finished
    refused = await client.post(f"/dashboard/actions/delete/{record.id}/", data={"csrfmiddlewaretoken": token, "confirm": "yes"})
    assert refused.status_code == 409 and "not finished" in refused.text
    assert await dash_store.get(record.id) is not None
    await dash_store.request_cancel(record.id)
    deleted = await client.post(f"/dashboard/actions/delete/{record.id}/", data={"csrfmiddlewaretoken": token, "confirm": "yes"})
    assert deleted.status_code == 302
    assert await dash_store.get(record.id) is None
    await client.aclose()


async def test_a_delete_asks_first_then_lands_on_the_history_with_the_message(server, users, dash_store):
    record = await failed(dash_store)
    client, token = await staff(server, users)
    own_page = f"/dashboard/tasks/{record.id}/"
    asked = await client.post(f"/dashboard/actions/delete/{record.id}/", data={"csrfmiddlewaretoken": token, "next": own_page})
    assert asked.status_code == 200 and "Delete 1 task?" in asked.text and "It cannot be undone." in asked.text
    assert await dash_store.get(record.id) is not None  # asking changed nothing
    assert f'<a href="{own_page}">No, keep it</a>' in asked.text
    confirm_token = csrf_from(asked.text)
    done = await client.post(f"/dashboard/actions/delete/{record.id}/", data={"csrfmiddlewaretoken": confirm_token, "confirm": "yes", "next": own_page})
    assert done.status_code == 302 and done.headers["location"] == "/dashboard/history/"  # not the gone task's 404
    assert await dash_store.get(record.id) is None
    landed = await client.get(done.headers["location"])
    assert f"Deleted task {record.id}." in landed.text
    await client.aclose()


async def test_bad_action_requests_get_clear_errors_and_change_nothing(server, users, dash_store):
    waiting = await submit(dash_store, "wait")
    client, token = await staff(server, users)
    missing = await client.post("/dashboard/actions/cancel/no-such-task/", data={"csrfmiddlewaretoken": token})
    assert missing.status_code == 404 and "no-such-task" in missing.text
    unknown = await client.post(f"/dashboard/actions/explode/{waiting.id}/", data={"csrfmiddlewaretoken": token})
    assert unknown.status_code == 404 and "Unknown action" in unknown.text
    not_finished = await client.post(f"/dashboard/actions/retry/{waiting.id}/", data={"csrfmiddlewaretoken": token})
    assert not_finished.status_code == 409 and "only finished tasks can be retried" in not_finished.text
    empty_bulk = await client.post("/dashboard/actions/bulk/cancel/", data={"csrfmiddlewaretoken": token})
    assert empty_bulk.status_code == 400 and "Select at least one task" in empty_bulk.text
    offsite = await client.post(f"/dashboard/actions/cancel/{waiting.id}/", data={"csrfmiddlewaretoken": token, "next": "https://evil.example/"})
    assert offsite.headers["location"] == f"/dashboard/tasks/{waiting.id}/"  # no open redirect
    assert (await dash_store.stats()).queue_length == 0
    await client.aclose()


async def test_bulk_cancel_retry_and_delete(server, users, dash_store):
    waiting = [await submit(dash_store, f"w{i}") for i in range(3)]
    client, token = await staff(server, users)
    ids = [r.id for r in waiting]
    response = await client.post("/dashboard/actions/bulk/cancel/", data={"csrfmiddlewaretoken": token, "ids": ids})
    assert response.status_code == 302
    assert all(r.state is TaskState.CANCELED for r in await dash_store.get_many(ids))
    await client.post("/dashboard/actions/bulk/retry/", data={"csrfmiddlewaretoken": token, "ids": ids[:2]})
    assert (await dash_store.stats()).queue_length == 2
    asked = await client.post("/dashboard/actions/bulk/delete/", data={"csrfmiddlewaretoken": token, "ids": ids, "next": "/dashboard/history/"})
    assert asked.status_code == 200 and "Delete 3 tasks?" in asked.text and all(f'name="ids" value="{i}"' in asked.text for i in ids)
    assert all(await dash_store.get_many(ids))
    partly = await client.post("/dashboard/actions/bulk/delete/", data={"csrfmiddlewaretoken": token, "ids": ids, "confirm": "yes"}, follow_redirects=True)
    assert "Deleted 1 task(s)." in partly.text and "2 refused" in partly.text
    assert [r is None for r in await dash_store.get_many(ids)] == [False, False, True]
    await client.aclose()


async def test_purge_confirms_the_count_then_deletes_only_that_state(server, users, dash_store):
    doomed = [await failed(dash_store) for _ in range(3)]
    kept = await dash_store.request_cancel((await submit(dash_store, "keep")).id)
    client, token = await staff(server, users)
    confirm = await client.get("/dashboard/history/purge/?state=failed")
    assert 'This deletes <strong>3</strong> failed task(s)' in confirm.text
    assert all(await dash_store.get_many(r.id for r in doomed))  # GET changed nothing
    bad = await client.get("/dashboard/history/purge/?state=working")
    assert bad.status_code == 400 and "Choose a finished state" in bad.text
    response = await client.post("/dashboard/actions/purge/", data={"csrfmiddlewaretoken": token, "state": "failed"}, follow_redirects=True)
    assert "Purged 3 failed task(s)" in response.text
    assert not any(await dash_store.get_many(r.id for r in doomed))
    assert await dash_store.get(kept.id) is not None
    await client.aclose()


async def test_pause_and_resume_the_queue(server, users, dash_store):
    client, token = await staff(server, users)
    await client.post("/dashboard/actions/pause/", data={"csrfmiddlewaretoken": token, "paused": "1"})
    assert await dash_store.is_paused()
    page = (await client.get("/")).text
    assert "The queue is paused" in page and "Resume the queue" in page
    await client.post("/dashboard/actions/pause/", data={"csrfmiddlewaretoken": token, "paused": "0"})
    assert not await dash_store.is_paused()
    await client.aclose()


async def test_non_staff_users_see_no_actions_and_are_refused(server, users, dash_store):
    record = await submit(dash_store, "wait")
    await users("viewer")
    client = await login(server, "viewer")
    page = (await client.get(f"/dashboard/tasks/{record.id}/")).text
    assert "Cancel task" not in page and 'id="act"' not in page and "(read-only)" in page
    token = csrf_from((await client.get("/accounts/login/")).text)
    for url, data in [(f"/dashboard/actions/cancel/{record.id}/", {}), ("/dashboard/actions/pause/", {"paused": "1"}), ("/dashboard/actions/purge/", {"state": "failed"})]:
        response = await client.post(url, data={"csrfmiddlewaretoken": token, **data})
        assert response.status_code == 403 and "Only staff users" in response.text
    assert (await dash_store.require(record.id)).state is TaskState.SUBMITTED and not await dash_store.is_paused()
    await client.aclose()


async def test_anonymous_posts_go_to_login_and_change_nothing(server, dash_store):
    record = await submit(dash_store, "wait")
    async with httpx.AsyncClient(base_url=server) as client:
        token = csrf_from((await client.get("/accounts/login/")).text)
        response = await client.post(f"/dashboard/actions/cancel/{record.id}/", data={"csrfmiddlewaretoken": token})
    assert response.status_code == 302 and response.headers["location"].startswith("/accounts/login/")
    assert (await dash_store.require(record.id)).state is TaskState.SUBMITTED


async def test_csrf_is_enforced(server, users, dash_store):
    record = await submit(dash_store, "wait")
    client, _ = await staff(server, users)
    response = await client.post(f"/dashboard/actions/cancel/{record.id}/", data={})
    assert response.status_code == 403
    forged = await client.post(f"/dashboard/actions/cancel/{record.id}/", data={"csrfmiddlewaretoken": "x" * 64})
    assert forged.status_code == 403
    assert (await dash_store.require(record.id)).state is TaskState.SUBMITTED
    await client.aclose()


@pytest.mark.parametrize("path", ["/dashboard/actions/cancel/{id}/", "/dashboard/actions/bulk/cancel/?ids={id}", "/dashboard/actions/pause/?paused=1", "/dashboard/actions/purge/?state=submitted"])
async def test_get_never_changes_state(server, users, dash_store, path):
    record = await submit(dash_store, "wait")
    client, _ = await staff(server, users)
    response = await client.get(path.format(id=record.id))
    assert response.status_code == 405
    assert (await dash_store.require(record.id)).state is TaskState.SUBMITTED and not await dash_store.is_paused()
    await client.aclose()


async def test_read_only_mode_removes_every_action(server, users, dash_store, set_config):
    record = await failed(dash_store)
    client, token = await staff(server, users)
    set_config(dashboard_read_only=True)
    for path in ["/", f"/dashboard/tasks/{record.id}/", "/dashboard/history/?state=failed"]:
        page = (await client.get(path)).text
        assert 'id="act"' not in page and "Retry task" not in page and "Pause the queue" not in page and "Purge every" not in page
    response = await client.post(f"/dashboard/actions/retry/{record.id}/", data={"csrfmiddlewaretoken": token})
    assert response.status_code == 403 and "read-only" in response.text
    assert (await dash_store.require(record.id)).state is TaskState.FAILED
    assert (await client.get("/dashboard/history/purge/?state=failed")).status_code == 403
    await client.aclose()


async def test_public_mode_opens_pages_read_only_to_anyone(server, dash_store, set_config):
    record = await submit(dash_store, "wait")
    set_config(dashboard_public=True)
    async with httpx.AsyncClient(base_url=server) as client:
        page = await client.get(f"/dashboard/tasks/{record.id}/")
        assert page.status_code == 200 and "Public read-only view" in page.text and "Cancel task" not in page.text
        token = csrf_from((await client.get("/accounts/login/")).text)
        response = await client.post(f"/dashboard/actions/cancel/{record.id}/", data={"csrfmiddlewaretoken": token})
    assert response.status_code == 302 and response.headers["location"].startswith("/accounts/login/")
    assert (await dash_store.require(record.id)).state is TaskState.SUBMITTED
