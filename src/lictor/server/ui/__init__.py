"""The web dashboard at ``/ui``: server-rendered pages for security teams.

Pages are Jinja2 templates rendered on the server; the only script is a small
same-origin file for the live feed and confirmations, so the Content-Security-Policy can
forbid inline scripts and styles entirely. People log in with their bearer token (admin,
reviewer or auditor); every page and every button checks the role again on the server.
"""

from __future__ import annotations

from lictor.server.ui.routes import ui_routes

__all__ = ["ui_routes"]
