"""Every dashboard page and partial, over HTTP against the real ASGI app and a real Redis."""

from __future__ import annotations

import base64
import html
from urllib.parse import unquote

import httpx
import pytest

from queueapp import model
from queueapp.states import TaskState
from tests.dashboard.support import login, submit

pytestmark = pytest.mark.django_db(transaction=True)

PAGES = ["/", "/dashboard/queue/", "/dashboard/active/", "/dashboard/history/", "/dashboard/contexts/"]


async def staff_client(server, users):
    await users("boss", staff=True)
    return await login(server, "boss")


async def failed_task(store, text="fail boom", context_id=None):
    record = await submit(store, text, context_id)
    return await store.finish_unclaimed(await store.require(record.id), TaskState.FAILED, "boom")


@pytest.mark.parametrize("path", [*PAGES, "/dashboard/tasks/x/", "/dashboard/contexts/x/", "/dashboard/live/?page=overview", "/dashboard/history/purge/?state=failed"])
async def test_anonymous_visitors_are_sent_to_the_login_page(server, path):
    async with httpx.AsyncClient(base_url=server) as client:
        response = await client.get(path)
    assert response.status_code == 302
    assert response.headers["location"].startswith("/accounts/login/?next=")


async def test_login_page_explains_how_to_get_in(server):
    async with httpx.AsyncClient(base_url=server) as client:
        response = await client.get("/accounts/login/")
    assert response.status_code == 200
    assert "A2A_DASHBOARD_ADMIN_PASSWORD" in response.text and "admin" in response.text


async def test_empty_queue_shows_empty_states_everywhere(server, users):
    client = await staff_client(server, users)
    texts = {path: (await client.get(path)).text for path in PAGES}
    assert 'data-testid="queue-length">0<' in texts["/"]
    assert "No worker is alive." in texts["/"]
    assert "Nothing finished in the last hour." in texts["/"]
    assert "No task is waiting." in texts["/dashboard/queue/"]
    assert "No task is active." in texts["/dashboard/active/"]
    assert "No finished task here." in texts["/dashboard/history/"]
    assert "No context yet." in texts["/dashboard/contexts/"]
    assert "no-worker-warning" not in texts["/"]
    await client.aclose()


async def test_missing_task_and_context_are_404(server, users):
    client = await staff_client(server, users)
    assert (await client.get("/dashboard/tasks/no-such-task/")).status_code == 404
    assert (await client.get("/dashboard/contexts/no-such-context/")).status_code == 404
    assert (await client.get("/dashboard/tasks/no-such-task/parts/a0.0")).status_code == 404
    await client.aclose()


@pytest.mark.parametrize("path", ["/no/such/page", "/dashboard/tasks/no-such-task/", "/dashboard/nothing-here/"])
async def test_not_found_is_a_dashboard_page_that_names_no_internal_class(server, users, path):
    client = await staff_client(server, users)
    answer = await client.get(path)
    assert answer.status_code == 404 and answer.headers["content-type"].startswith("text/html")
    text = answer.text
    assert "Resolver404" not in text and "Http404" not in text
    assert "Not found" in text and f"<code>{path}</code>" in text
    assert "dashboard/dashboard.css" in text and 'aria-label="Dashboard"' in text and "boss" in text  # the layout, signed in
    await client.aclose()


async def test_a_post_without_its_form_token_gets_the_styled_403(server, users, dash_store):
    record = await submit(dash_store, "wait")
    client = await staff_client(server, users)
    answer = await client.post(f"/dashboard/actions/cancel/{record.id}/", data={})
    assert answer.status_code == 403 and "The form could not be checked" in answer.text and "dashboard/dashboard.css" in answer.text
    assert "CSRF verification failed" not in answer.text
    await client.aclose()


async def test_the_favicon_is_served(server):
    async with httpx.AsyncClient(base_url=server, follow_redirects=True) as client:
        icon = await client.get("/favicon.ico")
    assert icon.status_code == 200 and icon.headers["content-type"] == "image/svg+xml" and icon.text.startswith("<svg")


async def test_overview_counts_and_warns_when_tasks_wait_without_workers(server, users, dash_store):
    for i in range(3):
        await submit(dash_store, f"job {i}")
    await failed_task(dash_store)
    client = await staff_client(server, users)
    page = (await client.get("/")).text
    assert 'data-testid="queue-length">3<' in page
    assert 'data-state="submitted">3<' in page and 'data-state="failed">1<' in page
    assert 'data-testid="no-worker-warning"' in page and "3 task(s) are waiting and no worker is alive" in page
    assert "Eviction policy" in page and "noeviction" in page
    await client.aclose()


async def test_overview_lists_live_workers_with_their_tasks(server, users, dash_store):
    client = await staff_client(server, users)  # first: hashing a password can outlast the 3 s lease on a busy machine
    record = await submit(dash_store, "hold")
    ids, _ = await dash_store.take(1)
    claims = await dash_store.lease(ids, "host-a:42:abcd", 30)
    await dash_store.heartbeat("host-a:42:abcd", {"host": "host-a", "pid": 42, "tasks": [record.id], "concurrency": 4, "processed": 7}, claims, 30)
    page = (await client.get("/")).text
    assert "host-a:42" in page and f'/dashboard/tasks/{record.id}/' in page
    assert "no-worker-warning" not in page
    active = (await client.get("/dashboard/active/")).text
    assert "host-a:42:abcd" in active
    await client.aclose()


async def test_queue_pages_show_positions_and_stop_at_the_edges(server, users, dash_store):
    records = [await submit(dash_store, f"job {i}") for i in range(51)]
    client = await staff_client(server, users)
    first = (await client.get("/dashboard/queue/")).text
    assert first.count('name="ids"') == 50
    assert f'/dashboard/tasks/{records[0].id}/' in first and f'/dashboard/tasks/{records[50].id}/' not in first
    assert "?offset=50" in first and "Earlier positions" not in first
    second = (await client.get("/dashboard/queue/?offset=50")).text
    assert second.count('name="ids"') == 1 and f'/dashboard/tasks/{records[50].id}/' in second
    assert '<td class="num">51</td>' in second and "Later positions" not in second
    beyond = (await client.get("/dashboard/queue/?offset=500")).text
    assert "No task is waiting." in beyond
    nonsense = (await client.get("/dashboard/queue/?offset=abc")).text
    assert nonsense.count('name="ids"') == 50
    await client.aclose()


async def test_history_pages_by_cursor_newest_first_without_repeats(server, users, dash_store):
    finished = []
    for i in range(52):
        record = await submit(dash_store, f"job {i}")
        finished.append(await dash_store.request_cancel(record.id))
    client = await staff_client(server, users)
    first = (await client.get("/dashboard/history/")).text
    assert first.index(model.short_id(finished[-1].id)) < first.index(model.short_id(finished[-2].id))
    cursor = html.unescape(first.split("cursor=")[1].split('"')[0])
    second = (await client.get("/dashboard/history/", params={"cursor": unquote(cursor)})).text
    seen_first = {r.id for r in finished if f"/dashboard/tasks/{r.id}/" in first}
    seen_second = {r.id for r in finished if f"/dashboard/tasks/{r.id}/" in second}
    assert len(seen_first) == 50 and len(seen_second) == 2 and not seen_first & seen_second
    assert "Older →" not in second and "← Newest" in second
    await client.aclose()


@pytest.mark.parametrize("path", ["/dashboard/history/", "/dashboard/active/"])
@pytest.mark.parametrize("cursor", ["abc", "nan:x", "1e5:x"])
async def test_a_cursor_the_server_did_not_issue_shows_the_first_page(server, users, dash_store, path, cursor):
    record = await submit(dash_store, "still waiting")
    if path.endswith("history/"):
        await dash_store.request_cancel(record.id)
    client = await staff_client(server, users)
    for query in ({"cursor": cursor}, {"cursor": cursor, "q": "waiting"}):
        answer = await client.get(path, params=query)
        assert answer.status_code == 200 and f"/dashboard/tasks/{record.id}/" in answer.text
    live = await client.get("/dashboard/live/", params={"page": path.split("/")[2], "cursor": cursor})
    assert live.status_code == 200
    await client.aclose()


async def test_history_filters_by_state_and_finds_ids_and_text(server, users, dash_store):
    failed = await failed_task(dash_store, "render the quarterly report")
    canceled = await dash_store.request_cancel((await submit(dash_store, "something else")).id)
    client = await staff_client(server, users)
    only_failed = (await client.get("/dashboard/history/?state=failed")).text
    assert failed.id in only_failed and canceled.id not in only_failed
    by_id = (await client.get("/dashboard/history/", params={"q": canceled.id})).text
    assert "The task with id" in by_id and f"/dashboard/tasks/{canceled.id}/" in by_id
    by_context = (await client.get("/dashboard/history/", params={"q": failed.context_id})).text
    assert "Tasks of context" in by_context and f"/dashboard/tasks/{failed.id}/" in by_context
    by_text = (await client.get("/dashboard/history/", params={"q": "QUARTERLY"})).text
    assert f"/dashboard/tasks/{failed.id}/" in by_text and f"/dashboard/tasks/{canceled.id}/" not in by_text
    nothing = (await client.get("/dashboard/history/", params={"q": "no such words"})).text
    assert "0 match(es)" in nothing
    bad_state = (await client.get("/dashboard/history/?state=bogus")).text
    assert failed.id in bad_state and canceled.id in bad_state  # an unknown state is no filter
    await client.aclose()


async def test_text_search_reads_a_bounded_number_of_tasks_and_continues(server, users, dash_store, set_config):
    set_config(dashboard_search_scan=100)
    needle = await failed_task(dash_store, "the needle")
    for i in range(120):
        await dash_store.request_cancel((await submit(dash_store, f"hay {i}")).id)
    client = await staff_client(server, users)
    first = (await client.get("/dashboard/history/", params={"q": "needle"})).text
    assert "among 100 finished task(s) searched" in first and "Search older" in first
    assert f"/dashboard/tasks/{needle.id}/" not in first
    cursor = html.unescape(first.split("cursor=")[1].split('"')[0])
    more = (await client.get("/dashboard/history/", params={"q": "needle", "cursor": unquote(cursor)})).text
    assert f"/dashboard/tasks/{needle.id}/" in more
    await client.aclose()


async def test_contexts_and_context_view_show_the_conversation(server, users, dash_store):
    first = await submit(dash_store, "What is the capital of France?")
    record = await dash_store.require(first.id)
    record.task["history"].append(model.agent_text("Paris.", first.id, first.context_id))
    record.task["artifacts"] = [{"artifactId": "a1", "name": "answer", "parts": [{"data": {"city": "Paris"}}]}]
    record.task["status"] = model.status(TaskState.COMPLETED, model.now_ms())
    await dash_store.finish(record, model.status_event(record.task))
    await submit(dash_store, "And of Spain?", first.context_id)
    client = await staff_client(server, users)
    listing = (await client.get("/dashboard/contexts/")).text
    assert first.context_id in listing and '<td class="num">2</td>' in listing
    convo = (await client.get(f"/dashboard/contexts/{first.context_id}/")).text
    assert convo.index("What is the capital of France?") < convo.index("Paris.") < convo.index("And of Spain?")
    assert "Artifact: answer" in convo and "&quot;city&quot;: &quot;Paris&quot;" in convo
    assert "2 task(s), oldest first" in convo
    await client.aclose()


async def test_task_page_shows_timeline_messages_artifacts_identity_and_raw_json(server, users, dash_store):
    record, _ = await dash_store.create_task(model.message("user", [{"text": "make files"}], message_id="m1"), identity="alice@example.com")
    record = await dash_store.require(record.id)
    raw = base64.b64encode(b"hello file").decode()
    record.task["artifacts"] = [
        {"artifactId": "t", "name": "notes", "parts": [{"text": "plain words"}]},
        {"artifactId": "d", "name": "numbers", "parts": [{"data": {"count": 42}}]},
        {"artifactId": "f", "name": "files", "parts": [{"raw": raw, "filename": "out.txt", "mediaType": "text/plain"}, {"url": "https://example.com/out.txt", "filename": "out.txt"}, {"url": "javascript:alert(1)"}]},
    ]
    record.task["status"] = model.status(TaskState.FAILED, model.now_ms(), model.agent_text("it broke"))
    await dash_store.finish(record, model.status_event(record.task), error="it broke")
    client = await staff_client(server, users)
    page = (await client.get(f"/dashboard/tasks/{record.id}/")).text
    assert 'data-testid="identity"><a href="/dashboard/history/?owner=alice%40example.com">alice@example.com</a>' in page
    assert "plain words" in page and "&quot;count&quot;: 42" in page
    assert f'/dashboard/tasks/{record.id}/parts/a2.0' in page and 'href="https://example.com/out.txt"' in page
    assert 'href="javascript:' not in page and "<code>javascript:alert(1)</code>" in page
    assert "Raw task JSON" in page and 'data-testid="raw-json"' in page and "&quot;artifactId&quot;: &quot;f&quot;" in page
    assert page.count('class="badge state-submitted"') >= 1 and 'class="badge state-failed"' in page
    assert "it broke" in page
    download = await client.get(f"/dashboard/tasks/{record.id}/parts/a2.0")
    assert download.content == b"hello file"
    assert download.headers["content-disposition"] == 'attachment; filename="out.txt"'
    assert download.headers["content-type"] == "application/octet-stream"
    assert (await client.get(f"/dashboard/tasks/{record.id}/parts/a0.0")).status_code == 404  # a text part is no file
    await client.aclose()


@pytest.mark.parametrize(
    ("filename", "header"),
    [
        ("a\r\nSet-Cookie: x=1.txt", 'attachment; filename="a__Set-Cookie: x=1.txt"'),
        ("line\u2028break.txt", 'attachment; filename="line_break.txt"'),
        ("résumé.pdf", "attachment; filename=\"resume.pdf\"; filename*=UTF-8''r%C3%A9sum%C3%A9.pdf"),
        ("日本.txt", "attachment; filename=\".txt\"; filename*=UTF-8''%E6%97%A5%E6%9C%AC.txt"),
        ('say "hi".txt', "attachment; filename=\"say _hi_.txt\"; filename*=UTF-8''say%20%22hi%22.txt"),
    ],
)
async def test_file_part_downloads_survive_any_filename(server, users, dash_store, filename, header):
    record, _ = await dash_store.create_task(model.message("user", [{"raw": base64.b64encode(b"payload").decode(), "filename": filename}], message_id=model.new_id()))
    client = await staff_client(server, users)
    download = await client.get(f"/dashboard/tasks/{record.id}/parts/m0.0")
    assert download.status_code == 200 and download.content == b"payload"
    assert download.headers["content-disposition"] == header
    await client.aclose()


HOSTILE = '<script>alert("x")</script><img src=x onerror=alert(1)>'


async def test_html_and_script_in_task_content_are_escaped_everywhere(server, users, dash_store):
    waiting = await submit(dash_store, HOSTILE)
    record, _ = await dash_store.create_task(model.message("user", [{"text": HOSTILE}, {"data": {"html": HOSTILE}}], message_id="h"), context_id=f"ctx-{HOSTILE[:8]}", identity=HOSTILE)
    record = await dash_store.require(record.id)
    record.task["artifacts"] = [{"artifactId": "x", "name": HOSTILE, "parts": [{"text": HOSTILE}, {"raw": "aGk=", "filename": HOSTILE}]}]
    record.task["status"] = model.status(TaskState.FAILED, model.now_ms(), model.agent_text(HOSTILE))
    await dash_store.finish(record, model.status_event(record.task), error=HOSTILE)
    client = await staff_client(server, users)
    paths = [
        *PAGES, f"/dashboard/tasks/{record.id}/", f"/dashboard/tasks/{waiting.id}/", f"/dashboard/contexts/{record.context_id}/",
        f"/dashboard/history/?q={HOSTILE}", "/dashboard/history/?q=alert", "/dashboard/live/?page=queue", f"/dashboard/live/?page=task&id={record.id}",
        f"/dashboard/live/?page=context&id={record.context_id}",
    ]
    for path in paths:
        response = await client.get(path, params=None)
        assert response.status_code == 200, path
        assert "<script>alert" not in response.text and "<img src=x" not in response.text, path
    task_page = (await client.get(f"/dashboard/tasks/{record.id}/")).text
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in task_page
    await client.aclose()


async def test_live_partial_returns_out_of_band_fragments(server, users, dash_store):
    await submit(dash_store, "one")
    client = await staff_client(server, users)
    response = await client.get("/dashboard/live/?page=queue")
    assert response.status_code == 200
    assert '<section id="summary" class="summary" aria-label="Queue summary" hx-swap-oob="true">' in response.text
    assert '<section id="queue" aria-labelledby="queue-heading" hx-swap-oob="true">' in response.text
    assert "<html" not in response.text
    unknown = await client.get("/dashboard/live/?page=nope")
    assert unknown.status_code == 400 and "Unknown page 'nope'" in unknown.text
    await client.aclose()


async def test_pages_are_readable_without_javascript_and_carry_live_wiring(server, users, dash_store):
    await submit(dash_store, "one")
    client = await staff_client(server, users)
    page = (await client.get("/dashboard/queue/?offset=0")).text
    assert 'ws-connect="/ws/dashboard/?page=queue&amp;offset=0"' in page
    assert "/static/django_htmx/htmx-2.min.js" in page and "/static/django_htmx/ext/hx-ws-2.min.js" in page
    assert "<noscript>" in page and "<time datetime=" in (await client.get("/dashboard/contexts/")).text
    assert (await client.get("/static/django_htmx/ext/hx-ws-2.min.js")).status_code == 200
    assert (await client.get("/static/dashboard/live.js")).status_code == 200
    await client.aclose()
