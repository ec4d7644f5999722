"""Benchmarks of Lictor against other policy engines (not part of the installed package)."""
