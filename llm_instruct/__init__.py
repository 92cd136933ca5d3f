"""Teach a causal language model a few instructions from a text file, then talk to it.

The flow, one module per stage:
instruction file -> examples (instructions) -> prompts (prompt) -> token ids and
labels (tokens) -> Trainer (train) -> model directory (modeldir) -> answers
(generation, evaluation, answer).
"""
