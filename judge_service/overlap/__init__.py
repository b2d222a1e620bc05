"""Eval/train overlap check: which eval prompts appear in fine-tuning data (docs/fairness-checks.md)."""
