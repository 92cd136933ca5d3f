"""The same training with less element-wise work: two costs the profile names, each removed
without changing what is computed.

BLOOM's GELU becomes torch's fused kernel (models/activations.py).

A model whose output layer shares its weight with the input embedding (BLOOM, GPT-2) gets that
weight's gradient from both: a dense one from the output layer and, from the lookup, a
vocabulary-sized block of zeros with the batch's rows filled in, which is zero-filled and then
added whole every step (206 MB for the German BLOOMs). A sparse lookup gradient adds only the
batch's rows into the output layer's dense one; the sum is the same dense gradient.
"""

from torch import nn

from ..models.activations import fuse_activations
from .output_gradient import keep_output_gradient


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
