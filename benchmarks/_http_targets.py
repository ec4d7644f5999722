"""In-process servers the HTTP benchmark compares with ``lictor serve``; run by ``http.py``.

``lictor serve`` itself is started as the real command (so ``--workers`` and
``audit_sync`` are measured as an operator would run them). The references here run in
their own process, one uvicorn worker each, with the same event loop and HTTP parser
uvicorn picks for ``lictor serve`` (uvloop and httptools when installed):

* ``bare``: a raw ASGI callable doing the same work on the hot path: read the body,
  authenticate the bearer token (through the same cached ``Authenticator``),
  ``Governor.decide_async`` with the same durable audit writer, and nothing else. The
  reference for what Starlette routing, problem+json and metrics cost.
* ``bare-memory``: the bare app with the audit trail in memory (no SQL, no fsync).
* ``lictor-memory``: the real ``create_app`` with the audit trail in memory: "the same
  server with audit off" (an in-memory trail still seals every record).
"""

from __future__ import annotations

import sys

# This folder holds ``http.py``; as a script's folder it would shadow the standard
# library's ``http`` package that uvicorn needs.
if sys.path and sys.path[0] == __file__.rsplit("/", 1)[0]:
    sys.path.pop(0)

import json
from pathlib import Path
from typing import Any

import uvicorn

from lictor.server.app import create_app
from lictor.server.runtime import Runtime
from lictor.service.audit_writer import AuditWriter
from lictor.service.memory import MemoryAuditStore, SystemClock
from lictor.settings import load_settings


def _memory_audit(runtime: Runtime) -> None:
    """Point the runtime's Governor at an in-memory trail (same writer, no database)."""
    writer = AuditWriter(MemoryAuditStore(), SystemClock()).start()
    runtime.governor.audit = writer


def _bare_app(runtime: Runtime) -> Any:
    governor = runtime.governor
    authenticator = runtime.authenticator

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["path"] == "/healthz":
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": b"ok"})
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        headers = dict(scope["headers"])
        credential = await authenticator.authenticate(
            headers.get(b"authorization", b"").decode("latin-1")
        )
        data = json.loads(body)
        data.setdefault("agent_id", credential.subject)
        decision = await governor.decide_async(data, credential_id=credential.id)
        payload = json.dumps(decision.to_json()).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(payload)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": payload})

    return app


def main() -> None:
    """``python _http_targets.py KIND CONFIG PORT``."""
    kind, config, port = sys.argv[1], Path(sys.argv[2]), int(sys.argv[3])
    runtime = Runtime.open(load_settings(config))
    if kind in ("bare-memory", "lictor-memory"):
        _memory_audit(runtime)
    app = create_app(runtime) if kind.startswith("lictor") else _bare_app(runtime)
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
