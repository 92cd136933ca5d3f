"""Teach a causal language model a few instructions from a file, then talk to it.

The flow, one module per stage:
instruction file -> examples (sources, instructions, records) -> prompts (prompt) -> token ids
and labels (tokens) -> plan (plan, memory, preflight) -> Trainer (fine_tune, trainer, batching,
answer_loss, checkpoints, interrupt) -> model directory (publish, modeldir) -> answers
(generation, evaluation, metrics, answer).
"""
