"""The console log handler of every process: lines of one event-loop turn in one write."""

from __future__ import annotations

import asyncio
import io
import logging

from queueapp.startup import PlainFormatter, TurnBufferedStreamHandler


class CountingStream(io.StringIO):
    def __init__(self) -> None:
        super().__init__()
        self.writes = 0

    def write(self, text: str) -> int:
        self.writes += 1
        return super().write(text)


def handler_and_logger(name: str) -> tuple[CountingStream, logging.Logger, TurnBufferedStreamHandler]:
    stream = CountingStream()
    handler = TurnBufferedStreamHandler(stream)
    handler.setFormatter(PlainFormatter("%(levelname)s %(message)s"))
    logger = logging.getLogger(name)
    logger.handlers, logger.propagate, logger.level = [handler], False, logging.INFO
    return stream, logger, handler


def test_lines_of_one_turn_are_written_together_by_the_end_of_the_turn():
    stream, logger, _ = handler_and_logger("test.turn")

    async def work() -> tuple[str, str]:
        for n in range(3):
            logger.info("task %d done", n)
        during = stream.getvalue()
        await asyncio.sleep(0)  # the end of the turn
        return during, stream.getvalue()

    during, after = asyncio.run(work())
    assert during == ""
    assert after == "INFO task 0 done\nINFO task 1 done\nINFO task 2 done\n"
    assert stream.writes == 1


def test_without_a_running_loop_a_line_is_written_at_once():
    stream, logger, _ = handler_and_logger("test.noloop")
    logger.warning("starting")
    assert stream.getvalue() == "WARNING starting\n"


def test_lines_still_waiting_when_the_loop_ends_are_written_by_flush():
    stream, logger, handler = handler_and_logger("test.flush")

    async def last_words() -> None:
        logger.info("stopping")
        asyncio.get_running_loop().stop()  # the turn's callbacks may never run

    loop = asyncio.new_event_loop()
    loop.create_task(last_words())
    loop.run_forever()
    loop.close()
    handler.flush()  # logging.shutdown does this at exit
    assert stream.getvalue() == "INFO stopping\n"


def test_a_warning_is_written_at_once_after_the_lines_that_wait():
    stream, logger, _ = handler_and_logger("test.warning")

    async def work() -> str:
        logger.info("task claimed")
        logger.warning("Redis unavailable")
        return stream.getvalue()

    assert asyncio.run(work()) == "INFO task claimed\nWARNING Redis unavailable\n"


def test_lines_keep_coming_on_a_new_loop_after_one_closed_with_a_flush_pending():
    stream, logger, handler = handler_and_logger("test.newloop")

    async def log(text: str) -> None:
        logger.info(text)
        asyncio.get_running_loop().stop()  # the flush scheduled on this loop never runs

    first = asyncio.new_event_loop()
    first.create_task(log("on the first loop"))
    first.run_forever()
    first.close()
    assert stream.getvalue() == ""

    async def later() -> None:
        logger.info("on the second loop")
        await asyncio.sleep(0)

    asyncio.run(later())
    assert stream.getvalue() == "INFO on the first loop\nINFO on the second loop\n"
