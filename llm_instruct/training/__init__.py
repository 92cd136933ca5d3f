"""Training: instruct_ger.py's flags, the Trainer with its batches, loss, checkpoints and
Ctrl-C, and the end of a run: the model directory and its evaluation report."""
