"""The loss over answer tokens, with the output layer run only where an answer token is predicted.

The output layer projects every position onto the whole vocabulary (50,304 words for the
German BLOOMs), yet only positions whose next token belongs to an answer carry a label:
about a quarter of them in the example file. transformers' `logits_to_keep` accepts a
boolean mask of positions, so the collator marks those positions (tokens.predicted_positions), the model computes
logits there alone, and the loss is the same cross-entropy the model would compute,
summed over answer tokens and divided by their count.
"""

import torch
import torch.nn.functional as F

from ..data.tokens import IGNORE_INDEX


def answer_loss(outputs, labels: torch.Tensor, num_items_in_batch=None) -> torch.Tensor:
    """Cross-entropy of the kept logits (answer tokens, flattened in row order) against their labels.

    num_items_in_batch: the answer tokens of all batches of one optimizer step, which the
    Trainer counts, so that gradient accumulation weighs every token alike.
    """
    targets = labels[:, 1:]
    targets = targets[targets != IGNORE_INDEX].to(outputs.logits.device)
    total = F.cross_entropy(outputs.logits.float(), targets, reduction="sum")
    return total / (num_items_in_batch if num_items_in_batch is not None else targets.numel())
