"""tau-bench airline: policy.md as Lictor rules, replayed over recorded GPT-4o runs."""
