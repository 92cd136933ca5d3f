"""The same training with less element-wise work: two costs the profile names, each removed
without changing what is computed.

BLOOM writes the tanh approximation of GELU as eight separate element-wise operations with a
hand-written backward pass; torch has the same function as one fused kernel with its own
backward (`F.gelu(x, approximate="tanh")`). Swapping it in changes nothing that is saved: the
activation has no weights, and the model directory loads in plain transformers as before.

A model whose output layer shares its weight with the input embedding (BLOOM, GPT-2) gets that
weight's gradient from both: a dense one from the output layer and, from the lookup, a
vocabulary-sized block of zeros with the batch's rows filled in, which is zero-filled and then
added whole every step (206 MB for the German BLOOMs). A sparse lookup gradient adds only the
batch's rows into the output layer's dense one; the sum is the same dense gradient.
"""

import torch.nn.functional as F
from torch import nn
from transformers.models.bloom.modeling_bloom import BloomGelu

from .output_gradient import keep_output_gradient


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


def sparse_tied_embedding_gradient(model) -> bool:
    """Let the input embedding's lookup add only the batch's rows to the gradient of the weight it
    shares with the output layer. Only where that weight is shared and trained: an embedding of
    its own would be left with a sparse gradient that the optimizers refuse."""
    embedding, output = model.get_input_embeddings(), model.get_output_embeddings()
    if not isinstance(embedding, nn.Embedding) or output is None or output.weight is not embedding.weight:
        return False
    if not embedding.weight.requires_grad:
        return False
    embedding.sparse = True
    return True


def fuse_for_training(model, *, single_process: bool) -> None:
    """Both changes, and the output layer's kept gradient buffer (output_gradient.py), where they
    apply. Several processes reduce gradients as they arrive, before the two parts of a shared
    weight's gradient are summed, so the gradient bookkeeping stays single-process."""
    fuse_activations(model)
    if single_process:
        sparse_tied_embedding_gradient(model)
        keep_output_gradient(model)
