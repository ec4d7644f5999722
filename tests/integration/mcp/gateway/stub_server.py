"""A minimal MCP server over stdio, written against the wire format (no SDK import).

It starts in milliseconds, so the tests can crash it and let the gateway restart it.
Tools: ``echo`` (returns its arguments), ``crash`` (the process exits), ``hang`` (the
process stops answering). Usage: ``python stub_server.py [CALL_LOG]``; every
``tools/call`` it receives is appended to CALL_LOG, so a test can tell which calls
reached the upstream.
"""

from __future__ import annotations

import json
import os
import sys
import time

KNOWN_VERSIONS = ("2024-11-05", "2025-03-26", "2025-06-18", "2025-11-25")
TOOLS = [
    {
        "name": name,
        "description": description,
        "inputSchema": {"type": "object", "properties": {"text": {"type": "string"}}},
    }
    for name, description in (
        ("echo", "Return the text it is given."),
        ("crash", "Stop the server process (for failure tests)."),
        ("hang", "Never answer (for timeout tests)."),
    )
]


def answer(ident: object, result: object) -> None:
    sys.stdout.write(json.dumps({"jsonrpc": "2.0", "id": ident, "result": result}) + "\n")
    sys.stdout.flush()


def fail(ident: object, code: int, message: str) -> None:
    error = {"code": code, "message": message}
    sys.stdout.write(json.dumps({"jsonrpc": "2.0", "id": ident, "error": error}) + "\n")
    sys.stdout.flush()


def main() -> None:
    log_path = sys.argv[1] if len(sys.argv) > 1 else None
    for line in sys.stdin:
        message = json.loads(line)
        method = message.get("method")
        ident = message.get("id")
        if ident is None:
            continue  # a notification
        params = message.get("params") or {}
        if method == "initialize":
            asked = params.get("protocolVersion")
            version = asked if asked in KNOWN_VERSIONS else KNOWN_VERSIONS[-1]
            answer(
                ident,
                {
                    "protocolVersion": version,
                    "capabilities": {"tools": {}},
                    "serverInfo": {"name": "stub", "version": "1"},
                },
            )
        elif method == "ping":
            answer(ident, {})
        elif method == "tools/list":
            answer(ident, {"tools": TOOLS})
        elif method == "tools/call":
            if log_path:
                with open(log_path, "a", encoding="utf-8") as log:
                    log.write(json.dumps(params) + "\n")
            name = params.get("name")
            if name == "crash":
                os._exit(3)
            if name == "hang":
                time.sleep(3600)
            if name == "echo":
                text = json.dumps(params.get("arguments") or {})
                answer(ident, {"content": [{"type": "text", "text": text}], "isError": False})
            else:
                fail(ident, -32602, f"Unknown tool: {name}")
        else:
            fail(ident, -32601, "Method not found")


if __name__ == "__main__":
    main()
