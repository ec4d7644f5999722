"""InjecAgent: real prompt-injection attack calls against per-user-case agents.

``generate`` turns the hand-written ``catalogue.yaml`` into the policy bundle and the
inventory; ``replay`` decides every call of ``calls.jsonl`` and counts the outcomes.
"""
