"""MCP gateway tests. A package here, not at ``tests/integration/mcp``: a package named
``mcp`` would shadow the MCP SDK (for imports and for mypy)."""
