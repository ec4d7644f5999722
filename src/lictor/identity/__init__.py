"""Identity at the edge: keys and credentials for agents, people and Lictor itself.

This package does the cryptography and file I/O the pure core must not: it loads and
creates keys and hands the core plain callables (``sign``, ``verify``).
"""
