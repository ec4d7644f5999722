"""A background chore run every few seconds by each server process.

Housekeeping that must happen whether or not anyone looks (expiring reviews, pruning idle
risk sessions) runs on one of these. Every replica runs its own: the chores are written
so that two replicas doing the same one at once is harmless.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from lictor.errors import LictorError

__all__ = ["Periodic"]

log = logging.getLogger("lictor.periodic")


class Periodic:
    """Runs ``chore`` every ``interval_seconds`` on a daemon thread until closed.

    A chore that raises a :class:`~lictor.errors.LictorError` (a store outage) is logged
    and tried again at the next tick: the thread never dies of it.
    """

    def __init__(self, name: str, chore: Callable[[], object], interval_seconds: float) -> None:
        self.name = name
        self._chore = chore
        self._interval = interval_seconds
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> Periodic:
        """Start the thread (idempotent); the first run is one interval from now."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
            self._thread.start()
        return self

    def close(self) -> None:
        """Stop the thread, waiting for a chore that is running."""
        self._stop.set()
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.join(5)

    def run_once(self) -> bool:
        """Run the chore now, on this thread; return whether it succeeded."""
        try:
            self._chore()
        except LictorError:
            log.exception("%s failed; trying again in %.0f s", self.name, self._interval)
            return False
        return True

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            self.run_once()
