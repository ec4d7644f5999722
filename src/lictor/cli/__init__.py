"""The ``lictor`` command line."""
