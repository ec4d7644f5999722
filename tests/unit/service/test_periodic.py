"""Background chores keep running through store outages and stop when closed."""

from __future__ import annotations

import threading
import time

from lictor.errors import StoreError
from lictor.service.periodic import Periodic


def test_a_failing_chore_is_retried_at_the_next_tick_and_close_stops_it() -> None:
    runs: list[int] = []
    third = threading.Event()

    def chore() -> None:
        runs.append(len(runs))
        if len(runs) == 3:
            third.set()
        if len(runs) < 3:
            raise StoreError("database is down")

    periodic = Periodic("test-chore", chore, interval_seconds=0.01).start()
    assert third.wait(5)
    periodic.close()
    stopped_at = len(runs)
    assert stopped_at >= 3
    time.sleep(0.05)
    assert len(runs) == stopped_at  # nothing runs after close


def test_run_once_reports_whether_the_chore_succeeded() -> None:
    def failing() -> None:
        raise StoreError("database is down")

    assert Periodic("ok", lambda: None, 60).run_once() is True
    assert Periodic("failing", failing, 60).run_once() is False
