"""SDK tests against the real HTTP app."""
