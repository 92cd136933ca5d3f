"""Teach a causal language model a few instructions from a file, then talk to it.

The flow, one subpackage per stage:
instruction file -> data (examples, prompts, token ids and labels, batches) -> planning
(device, precision, memory, the run's plan) -> training (the Trainer, checkpoints, Ctrl-C)
-> models (the model directory, written whole or not at all) -> answering (generate.py,
evaluation).

Imports run one way, from a stage to the ones it builds on, never back and never in a cycle:
cli <- data <- models <- planning <- answering <- training. Training sits on top because a
run ends by answering its evaluation examples; tests/test_layout.py holds the order.
"""
