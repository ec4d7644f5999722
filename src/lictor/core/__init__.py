"""Lictor's pure core: models, policy, risk and audit chain.

Nothing here performs I/O, reads a clock, draws randomness or runs async code; time and
identifiers arrive as arguments. The CEL library is the one outside dependency.
"""
