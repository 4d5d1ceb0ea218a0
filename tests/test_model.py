"""The stored form of a task: what it leaves out comes back exactly on reading."""

from __future__ import annotations

import orjson

from queueapp import model
from queueapp.states import TaskState


def finished_task() -> dict:
    task = model.new_task("task-one", "context-one", model.message("user", [model.text_part("hi")], task_id="task-one", context_id="context-one"), 1_000)
    reply = model.agent_text("hello", "task-one", "context-one")
    task["history"].append(reply)
    task["status"] = model.status(TaskState.COMPLETED, 2_000, reply)
    task["artifacts"] = [{"artifactId": "a-1", "parts": [{"text": "result"}]}]
    task["metadata"] = {"source": "test"}
    return task


def test_a_packed_task_reads_back_exactly_and_is_much_smaller():
    task = finished_task()
    packed = model.pack_task(task)
    assert model.unpack_task(packed, "task-one", "context-one") == task
    assert list(model.unpack_task(packed, "task-one", "context-one")) == list(task)  # the same key order too
    stored = orjson.loads(packed)
    assert "id" not in stored and "task-one" not in packed and "context-one" not in packed
    assert "message" not in stored["status"]  # the final message is the last history message
    assert len(packed) < 0.7 * len(model.dumps(task))


def test_a_status_message_that_is_not_in_the_history_is_kept():
    task = finished_task()
    task["status"] = model.status(TaskState.WORKING, 3_000, model.agent_text("halfway", "task-one", "context-one"))
    assert model.unpack_task(model.pack_task(task), "task-one", "context-one") == task
    assert "halfway" in model.pack_task(task)


def test_messages_that_name_another_task_keep_their_ids():
    task = finished_task()
    task["history"][0] = model.message("user", [model.text_part("hi")], task_id="task-one", context_id="other-context")
    assert model.unpack_task(model.pack_task(task), "task-one", "context-one") == task


def test_a_task_stored_whole_still_reads():
    task = finished_task()
    assert model.unpack_task(model.dumps(task), "task-one", "context-one") == task


def test_a_task_without_history_or_status_message_round_trips():
    task = {"id": "task-one", "contextId": "context-one", "status": model.status(TaskState.SUBMITTED, 1_000)}
    assert model.unpack_task(model.pack_task(task), "task-one", "context-one") == task


def test_timestamps_are_iso_8601_utc_with_milliseconds():
    assert model.iso_from_ms(0) == "1970-01-01T00:00:00.000Z"
    assert model.iso_from_ms(951_782_400_007) == "2000-02-29T00:00:00.007Z"  # a leap day
    assert model.iso_from_ms(1_798_761_599_999) == "2026-12-31T23:59:59.999Z"
    assert model.iso_from_ms(1_798_761_599_999.6) == "2026-12-31T23:59:59.999Z"  # whole milliseconds only


def test_ids_are_time_ordered_uuids_that_only_go_up_even_when_the_clock_steps_back(monkeypatch):
    # The time indexes order writes of one ms by id: ids made later must sort later.
    import time
    import uuid

    clock = iter([1_800_000_000_005_000_000] * 3 + [1_800_000_000_001_000_000] * 2 + [1_800_000_000_009_000_000])
    monkeypatch.setattr(model, "_last_id_time", 0)
    monkeypatch.setattr(time, "time_ns", lambda: next(clock))
    ids = [model.new_id() for _ in range(6)]
    assert ids == sorted(ids) and len(set(ids)) == 6
    parsed = [uuid.UUID(i) for i in ids]
    assert {u.version for u in parsed} == {7} and {u.variant for u in parsed} == {uuid.RFC_4122}
    assert [u.int >> 80 for u in parsed] == [1_800_000_000_005] * 5 + [1_800_000_000_009]  # the ms, never back


def test_short_ids_tell_apart_ids_made_in_the_same_millisecond():
    ids = [model.new_id() for _ in range(50)]  # their first digits are the same time
    assert len({model.short_id(i) for i in ids}) == 50 and all(len(model.short_id(i)) == 8 for i in ids)
    assert model.short_id(ids[0]) == ids[0][-8:]
    assert model.short_id("support-ticket-4711") == "support-" and model.short_id("ctx-1") == "ctx-1"
