"""What ``provenance()`` and ``window_count()`` / ``window_sum()`` answer for one call.

:class:`CallContext` implements the policy module's ``SessionFunctions``: the service
builds one per decision from the session's provenance index, the task text and the
window totals it read, and the evaluator binds it while CEL runs. Pure: it only looks
things up.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from lictor.core.risk.provenance import ProvenanceIndex, source_labels

__all__ = ["CallContext", "WindowKey"]

WindowKey = tuple[str, str, str, str]
"""(tools, argument, duration, scope) exactly as written in the policy ("" for counts)."""

_NO_WINDOWS: Final[Mapping[WindowKey, tuple[int, float]]] = {}


class CallContext:
    """The session functions of one call.

    ``windows`` maps each declared window to its (count, sum) of earlier allowed calls.
    ``index`` is ``None`` when the policy has no condition that can call ``provenance()``
    (the service then does not look the session's index up); a call anyway fails, and the
    condition with it, rather than answer from nothing.
    """

    __slots__ = ("index", "task", "windows")

    def __init__(
        self,
        index: ProvenanceIndex | None,
        task: str = "",
        windows: Mapping[WindowKey, tuple[int, float]] = _NO_WINDOWS,
    ) -> None:
        self.index = index
        self.task = task
        self.windows = windows

    def provenance(self, value: object) -> list[str]:
        """Sorted sources of ``value`` (``task``, ``trusted``, ``tool_output:<tool>``).

        ``["unknown"]`` when it appears in none of them.

        Raises:
            ValueError: no provenance index was given for this call.
        """
        if self.index is None:
            raise ValueError("provenance() is not traced for this policy")
        return source_labels(self.index.trace_value(value, task=self.task))

    def window_count(self, tools: str, duration: str, scope: str) -> int:
        """Earlier allowed calls in the window.

        Raises:
            ValueError: the window was not read before evaluation (its arguments are not
                string literals in the policy), so the condition fails and denies.
        """
        return self._window((tools, "", duration, scope))[0]

    def window_sum(self, tools: str, argument: str, duration: str, scope: str) -> float:
        """Sum of ``argument`` over earlier allowed calls in the window.

        Raises:
            ValueError: as for :meth:`window_count`.
        """
        return self._window((tools, argument, duration, scope))[1]

    def _window(self, key: WindowKey) -> tuple[int, float]:
        found = self.windows.get(key)
        if found is None:
            raise ValueError(
                f"window {key!r} was not declared: window_count() and window_sum() take "
                "string literals only"
            )
        return found
