"""Tests for decision spans: attribute names and values, the no-op, OTLP/HTTP export."""

from __future__ import annotations

import http.server
import queue
import threading
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.semconv._incubating.attributes import enduser_attributes, gen_ai_attributes
from opentelemetry.semconv.attributes import error_attributes
from opentelemetry.trace import SpanKind, StatusCode

from lictor.core.decisions import Decision, Outcome, Reason, ReasonCode, Risk
from lictor.core.requests import ActionRequest, parse_request
from lictor.errors import ConfigError
from lictor.service.tracing import (
    NO_TRACING,
    OtelTracing,
    record_decision_span,
    traces_url,
    tracing_for,
)

AT = datetime(2026, 11, 25, 14, 3, 22, 418000, tzinfo=UTC)


def request(**changes: object) -> ActionRequest:
    data: dict[str, object] = {
        "request_id": "call-7",
        "agent_id": "mail-assistant",
        "principal": {"id": "emma@corp.example"},
        "delegation": ["emma@corp.example", "planner", "mail-assistant"],
        "session_id": "run-42",
        "tool": "send_email",
        "server": "workspace",
        "arguments": {"body": "secret"},
    }
    data.update(changes)
    return parse_request(data)


def decision(outcome: Outcome = Outcome.DENY, *reasons: Reason) -> Decision:
    return Decision(
        decision_id="01JDEC",
        outcome=outcome,
        reasons=reasons or (Reason("mail/external", outcome, "external recipient"),),
        policy_version="sha256:abc",
        decided_at=AT,
        risk=Risk(0.25),
        review_id="rev-1" if outcome is Outcome.REVIEW else None,
        shadow=(Reason("mail/strict", Outcome.DENY),),
    )


@pytest.fixture
def memory_tracing() -> Iterator[tuple[OtelTracing, InMemorySpanExporter]]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracing = OtelTracing(provider)
    yield tracing, exporter
    tracing.shutdown()


def test_decision_span_has_lictor_and_genai_attributes(
    memory_tracing: tuple[OtelTracing, InMemorySpanExporter],
) -> None:
    tracing, exporter = memory_tracing

    record_decision_span(tracing.tracer, request(), decision(), start_time_ns=1, end_time_ns=5)

    (span,) = exporter.get_finished_spans()
    assert span.name == "execute_tool send_email"
    assert span.kind is SpanKind.INTERNAL
    assert (span.start_time, span.end_time) == (1, 5)
    assert span.status.status_code is StatusCode.UNSET  # a deny is an answer, not an error
    assert dict(span.attributes or {}) == {
        "lictor.decision.id": "01JDEC",
        "lictor.decision.outcome": "deny",
        "lictor.policy.version": "sha256:abc",
        "lictor.agent.id": "mail-assistant",
        "lictor.principal.id": "emma@corp.example",
        "lictor.rule.ids": ("mail/external",),
        "lictor.rule.shadow_ids": ("mail/strict",),
        "lictor.risk.score": 0.25,
        "lictor.delegation": ("emma@corp.example", "planner", "mail-assistant"),
        "lictor.tool.server": "workspace",
        "gen_ai.operation.name": "execute_tool",
        "gen_ai.tool.name": "send_email",
        "gen_ai.tool.call.id": "call-7",
        "gen_ai.agent.id": "mail-assistant",
        "gen_ai.agent.name": "mail-assistant",
        "gen_ai.conversation.id": "run-42",
        "enduser.id": "emma@corp.example",
    }


def test_semantic_convention_names_are_the_packages() -> None:
    assert gen_ai_attributes.GEN_AI_OPERATION_NAME == "gen_ai.operation.name"
    assert gen_ai_attributes.GenAiOperationNameValues.EXECUTE_TOOL.value == "execute_tool"
    assert gen_ai_attributes.GEN_AI_TOOL_NAME == "gen_ai.tool.name"
    assert gen_ai_attributes.GEN_AI_TOOL_CALL_ID == "gen_ai.tool.call.id"
    assert gen_ai_attributes.GEN_AI_AGENT_ID == "gen_ai.agent.id"
    assert gen_ai_attributes.GEN_AI_AGENT_NAME == "gen_ai.agent.name"
    assert gen_ai_attributes.GEN_AI_CONVERSATION_ID == "gen_ai.conversation.id"
    assert enduser_attributes.ENDUSER_ID == "enduser.id"
    assert error_attributes.ERROR_TYPE == "error.type"


def test_minimal_request_sets_only_known_attributes(
    memory_tracing: tuple[OtelTracing, InMemorySpanExporter],
) -> None:
    tracing, exporter = memory_tracing
    bare = parse_request({"agent_id": "bot", "tool": "search"})

    tracing.record(bare, decision(Outcome.ALLOW))

    (span,) = exporter.get_finished_spans()
    attributes = dict(span.attributes or {})
    assert attributes["lictor.decision.outcome"] == "allow"
    for absent in ("lictor.principal.id", "gen_ai.conversation.id", "gen_ai.tool.call.id"):
        assert absent not in attributes


def test_review_carries_its_review_id(
    memory_tracing: tuple[OtelTracing, InMemorySpanExporter],
) -> None:
    tracing, exporter = memory_tracing
    record_decision_span(tracing.tracer, request(), decision(Outcome.REVIEW), agent_name="Mail")
    (span,) = exporter.get_finished_spans()
    assert (span.attributes or {})["lictor.review.id"] == "rev-1"
    assert (span.attributes or {})["gen_ai.agent.name"] == "Mail"


def test_evaluation_error_marks_the_span_as_error(
    memory_tracing: tuple[OtelTracing, InMemorySpanExporter],
) -> None:
    tracing, exporter = memory_tracing
    broken = Reason("evaluation_error", Outcome.DENY, "boom", ReasonCode.EVALUATION_ERROR)

    record_decision_span(tracing.tracer, request(), decision(Outcome.DENY, broken))

    (span,) = exporter.get_finished_spans()
    assert span.status.status_code is StatusCode.ERROR
    assert (span.attributes or {})["error.type"] == "evaluation_error"


def test_span_is_a_child_of_the_current_span(
    memory_tracing: tuple[OtelTracing, InMemorySpanExporter],
) -> None:
    tracing, exporter = memory_tracing
    with tracing.tracer.start_as_current_span("POST /v1/decide") as parent:
        record_decision_span(tracing.tracer, request(), decision())
    child = exporter.get_finished_spans()[0]
    assert child.parent is not None
    assert child.parent.span_id == parent.get_span_context().span_id


@pytest.mark.parametrize("endpoint", [None, ""])
def test_no_endpoint_means_the_no_op(endpoint: str | None) -> None:
    tracing = tracing_for(endpoint)
    assert tracing is NO_TRACING
    tracing.record(request(), decision())
    tracing.shutdown()


@pytest.mark.parametrize("endpoint", ["localhost:4318", "ftp://collector/v1/traces", "http://"])
def test_bad_endpoint_is_a_config_error(endpoint: str) -> None:
    with pytest.raises(ConfigError):
        tracing_for(endpoint)


def test_base_endpoint_gets_the_traces_path() -> None:
    assert traces_url("http://collector:4318") == "http://collector:4318/v1/traces"
    assert traces_url("https://collector:4318/") == "https://collector:4318/v1/traces"
    assert traces_url("http://c:4318/custom/path") == "http://c:4318/custom/path"


class OtlpReceiver(http.server.BaseHTTPRequestHandler):
    """A collector stand-in: keeps each POST body, answers 200 with an empty response."""

    received: queue.Queue[tuple[str, bytes]]

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.received.put((self.path, body))
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass  # keep test output clean


def test_spans_reach_a_real_otlp_http_receiver() -> None:
    received: queue.Queue[tuple[str, bytes]] = queue.Queue()
    handler = type("Handler", (OtlpReceiver,), {"received": received})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        tracing = tracing_for(f"http://127.0.0.1:{server.server_address[1]}")
        tracing.record(request(), decision())
        tracing.shutdown()  # flushes the batch processor
        path, body = received.get(timeout=10)
    finally:
        server.shutdown()
        server.server_close()
    assert path == "/v1/traces"
    export = ExportTraceServiceRequest()
    export.ParseFromString(body)
    resource_spans = export.resource_spans[0]
    resource = {a.key: a.value.string_value for a in resource_spans.resource.attributes}
    assert resource["service.name"] == "lictor"
    (span,) = resource_spans.scope_spans[0].spans
    assert span.name == "execute_tool send_email"
    attributes = {a.key: a.value for a in span.attributes}
    assert attributes["lictor.decision.id"].string_value == "01JDEC"
    assert attributes["gen_ai.operation.name"].string_value == "execute_tool"


class BrokenTracer:
    """A tracer whose every span fails: the decision path must not notice."""

    def start_span(self, *args: object, **kwargs: object) -> object:
        raise RuntimeError("exporter exploded")


def test_a_failing_tracer_never_raises_into_the_decision_path(
    memory_tracing: tuple[OtelTracing, InMemorySpanExporter],
    caplog: pytest.LogCaptureFixture,
) -> None:
    tracing, _ = memory_tracing
    tracing._tracer = BrokenTracer()  # type: ignore[assignment]  # a stand-in for a broken SDK
    tracing.record(request(), decision())
    assert "cannot record the span" in caplog.text
