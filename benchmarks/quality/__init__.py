"""The decision-quality evaluation: scenario corpus, policies and replay (README.md)."""
