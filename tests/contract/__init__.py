"""Contract tests: one body per behaviour, run against every implementation of a port."""
