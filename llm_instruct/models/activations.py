"""BLOOM's GELU as torch's fused kernel, for training and answering alike.

BLOOM writes the tanh approximation of GELU as eight separate element-wise operations (with a
hand-written backward pass); torch has the same function as one fused kernel with its own
backward (`F.gelu(x, approximate="tanh")`). Swapping it in changes nothing that is saved: the
activation has no weights, and the model directory loads in plain transformers as before.
A model trained with the fused kernel also answers with it, so both compute alike.
"""

import torch.nn.functional as F
from torch import nn
from transformers.models.bloom.modeling_bloom import BloomGelu


class TanhGelu(nn.Module):
    """GELU's tanh approximation as torch's fused kernel: BloomGelu's function, computed at once."""

    def forward(self, x):
        return F.gelu(x, approximate="tanh")


def fuse_activations(model) -> int:
    """Swap every BloomGelu for TanhGelu; returns how many were swapped."""
    swapped = 0
    for module in model.modules():
        for name, child in module.named_children():
            if isinstance(child, BloomGelu):
                setattr(module, name, TanhGelu())
                swapped += 1
    return swapped
