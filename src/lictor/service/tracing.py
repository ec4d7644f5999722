"""OpenTelemetry: one span per decision, exported over OTLP/HTTP when configured.

Tracing is observability, never enforcement: a span is recorded after the decision is
made and audited, spans leave through the SDK's batch processor on its own thread (a
bounded queue that drops when full), and nothing here can change or delay an answer.
Without an endpoint, :func:`tracing_for` returns :data:`NO_TRACING`, whose ``record``
is an empty method, and the OpenTelemetry packages are not even imported.

Attribute names: ``lictor.*`` for our own fields, and the OpenTelemetry GenAI semantic
conventions for the agent and tool (``gen_ai.operation.name`` = ``execute_tool``,
``gen_ai.tool.name``, ``gen_ai.tool.call.id``, ``gen_ai.agent.id``,
``gen_ai.agent.name``, ``gen_ai.conversation.id``) plus ``enduser.id`` for the
principal. The GenAI names were checked against ``opentelemetry-semantic-conventions``
0.66b2, where they are incubating (and now maintained in the separate GenAI semconv
repository); the test pins them to that package's constants. The span follows the
semconv name ``execute_tool {tool}`` so GenAI-aware backends group it with tool calls;
the ``lictor.*`` attributes tell it apart from the tool's own execution span. Tool
arguments are never attributes: telemetry is a wider audience than the audit trail.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Final, Protocol
from urllib.parse import urlsplit, urlunsplit

from lictor.core.decisions import Decision, ReasonCode
from lictor.core.requests import ActionRequest
from lictor.errors import ConfigError

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.trace import Tracer

__all__ = [
    "NO_TRACING",
    "DecisionTracing",
    "NoTracing",
    "OtelTracing",
    "decision_attributes",
    "record_decision_span",
    "tracing_for",
]

log = logging.getLogger("lictor.tracing")

INSTRUMENTATION_NAME: Final = "lictor"
OPERATION_EXECUTE_TOOL: Final = "execute_tool"
_TRACES_PATH: Final = "/v1/traces"

AttributeValue = str | bool | int | float | Sequence[str]


class DecisionTracing(Protocol):
    """Where the Governor reports each decision for tracing."""

    def record(
        self, request: ActionRequest, decision: Decision, *, start_time_ns: int | None = None
    ) -> None:
        """Record one span for a decision; must never raise or block."""
        ...

    def shutdown(self) -> None:
        """Flush what is buffered and release the exporter."""
        ...


class NoTracing:
    """Tracing switched off: every call returns at once and does nothing."""

    __slots__ = ()

    def record(
        self, request: ActionRequest, decision: Decision, *, start_time_ns: int | None = None
    ) -> None:
        """Do nothing."""

    def shutdown(self) -> None:
        """Do nothing."""


NO_TRACING: Final = NoTracing()
"""The shared no-op instance used when no endpoint is configured."""


class OtelTracing:
    """Spans through an OpenTelemetry tracer provider of our own.

    We do not install the provider globally: an embedding application keeps its own
    global provider, and tests build one per case.
    """

    def __init__(self, provider: TracerProvider) -> None:
        from lictor import __version__  # here, not at the top: lictor imports the service

        self._provider = provider
        self._tracer = provider.get_tracer(INSTRUMENTATION_NAME, __version__)

    @property
    def tracer(self) -> Tracer:
        """The tracer spans are made with."""
        return self._tracer

    def record(
        self, request: ActionRequest, decision: Decision, *, start_time_ns: int | None = None
    ) -> None:
        """Record the decision's span; a telemetry failure is logged, never raised."""
        try:
            record_decision_span(self._tracer, request, decision, start_time_ns=start_time_ns)
        except Exception:  # tracing must never fail a decision that is already made
            log.exception("cannot record the span of decision %s", decision.decision_id)

    def shutdown(self) -> None:
        """Flush buffered spans (bounded by the exporter's timeout) and stop."""
        self._provider.shutdown()


def tracing_for(endpoint: str | None, *, service_name: str = "lictor") -> DecisionTracing:
    """Build tracing for an OTLP/HTTP endpoint, or the no-op when there is none.

    Args:
        endpoint: The collector's traces URL (``http://collector:4318/v1/traces``); a
            URL with no path gets ``/v1/traces``, as the OTLP exporter spec adds to a
            base endpoint. None or empty disables tracing.
        service_name: The ``service.name`` resource attribute.

    Returns:
        :data:`NO_TRACING`, or an :class:`OtelTracing` with a batch exporter.

    Raises:
        ConfigError: The endpoint is not an http(s) URL, or the OpenTelemetry
            packages are not installed.
    """
    if not endpoint:
        return NO_TRACING
    url = traces_url(endpoint)
    try:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
    except ImportError as exc:
        raise ConfigError(
            f"otel_endpoint is set but OpenTelemetry is not installed ({exc.name}); "
            "install it with: pip install 'lictor[otel]', or unset otel_endpoint"
        ) from exc
    from lictor import __version__

    resource = Resource.create({"service.name": service_name, "service.version": __version__})
    provider = TracerProvider(resource=resource)
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=url)))
    return OtelTracing(provider)


def traces_url(endpoint: str) -> str:
    """Return the OTLP/HTTP traces URL for ``endpoint`` (``/v1/traces`` when no path).

    Raises:
        ConfigError: Not an http or https URL with a host.
    """
    parts = urlsplit(endpoint)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigError(
            f"otel_endpoint {endpoint!r} is not an http(s) URL; use e.g. "
            "http://localhost:4318/v1/traces"
        )
    if parts.path in ("", "/"):
        parts = parts._replace(path=_TRACES_PATH)
    return urlunsplit(parts)


def decision_attributes(
    request: ActionRequest, decision: Decision, *, agent_name: str | None = None
) -> dict[str, AttributeValue]:
    """Return the span attributes for one decision (pure; see the module docs for names).

    Args:
        request: The action request decided on.
        decision: The decision.
        agent_name: The inventory's display name, when known; else the agent id.
    """
    attributes: dict[str, AttributeValue] = {
        "lictor.decision.id": decision.decision_id,
        "lictor.decision.outcome": decision.outcome.value,
        "lictor.policy.version": decision.policy_version,
        "lictor.agent.id": request.agent_id,
        "lictor.rule.ids": [reason.rule for reason in decision.reasons],
        "lictor.risk.score": decision.risk.score,
        "gen_ai.operation.name": OPERATION_EXECUTE_TOOL,
        "gen_ai.tool.name": request.tool,
        "gen_ai.agent.id": request.agent_id,
        "gen_ai.agent.name": agent_name or request.agent_id,
    }
    if decision.shadow:
        attributes["lictor.rule.shadow_ids"] = [reason.rule for reason in decision.shadow]
    if decision.review_id is not None:
        attributes["lictor.review.id"] = decision.review_id
    if request.principal is not None:
        attributes["lictor.principal.id"] = request.principal.id
        attributes["enduser.id"] = request.principal.id
    if request.delegation:
        attributes["lictor.delegation"] = list(request.delegation)
    if request.session_id is not None:
        attributes["gen_ai.conversation.id"] = request.session_id
    if request.request_id is not None:
        attributes["gen_ai.tool.call.id"] = request.request_id
    if request.server is not None:
        attributes["lictor.tool.server"] = request.server
    return attributes


def record_decision_span(
    tracer: Tracer,
    request: ActionRequest,
    decision: Decision,
    *,
    start_time_ns: int | None = None,
    end_time_ns: int | None = None,
    agent_name: str | None = None,
) -> None:
    """Record one finished span for a decision, a child of the current span if any.

    A deny is an answer, not an error, so the span status stays unset; only a decision
    forced by an ``evaluation_error`` gets status ERROR with ``error.type``.

    Args:
        tracer: Where to record (from :class:`OtelTracing` or any tracer provider).
        request: The action request decided on.
        decision: The decision.
        start_time_ns: When deciding began (epoch ns); default now.
        end_time_ns: When the decision was made (epoch ns); default now.
        agent_name: The inventory's display name, when known.
    """
    from opentelemetry.trace import SpanKind, Status, StatusCode

    attributes = decision_attributes(request, decision, agent_name=agent_name)
    failed = any(reason.code is ReasonCode.EVALUATION_ERROR for reason in decision.reasons)
    if failed:
        attributes["error.type"] = ReasonCode.EVALUATION_ERROR.value
    span = tracer.start_span(
        f"{OPERATION_EXECUTE_TOOL} {request.tool}",
        kind=SpanKind.INTERNAL,
        attributes=attributes,
        start_time=start_time_ns,
    )
    if failed:
        span.set_status(Status(StatusCode.ERROR, ReasonCode.EVALUATION_ERROR.value))
    span.end(end_time=end_time_ns)
