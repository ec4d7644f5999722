"""Evaluations of Lictor against public agent tool-call data that nobody on the team wrote.

Each sub-package replays one dataset through a real :class:`~lictor.service.governor.Governor`
with policies kept beside it; ``run.py`` prints the figures. Nothing here is part of the
installed package: the evaluations are a client of the public API, like any integration.
"""
