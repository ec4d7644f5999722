"""Use cases: put core calls and port calls in order (decide, report, load policies)."""
