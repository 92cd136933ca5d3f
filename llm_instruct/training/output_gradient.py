"""The output layer's weight gradient, written every step into one buffer that the layer keeps.

The output layer's weight is the model's largest: 50,304 words by 1,024 numbers for the 350m
shape (206 MB), twice that for the tutorial's 1.3B model. Autograd hands its gradient a fresh
tensor every step, and a block that large comes straight from the operating system (glibc maps
anything over 32 MB anew), so every step pays for faulting in and zeroing its pages; where the
weight is tied to the input embedding, autograd copies the block once more to add the lookup's
rows to it. Here the output layer's backward pass writes the product into a buffer it keeps and
hands that buffer to the weight as its gradient; the lookup's rows are then added in place.
The products and sums are the ones autograd computes. On a 2-core CPU, bf16 steps of the 350m
shape ran about a fifth faster, fp32 steps a little (docs/benchmark.md).

Under autocast the layer multiplies in the 16-bit dtype through mixed_precision.recast_linear,
which keeps no 16-bit copy of the weight. Only where a single process trains: several
processes reduce each gradient as autograd delivers it, and this one it does not deliver.
"""

import torch
from torch import nn

from .mixed_precision import recast_linear


class OutputLayer(nn.Linear):
    """nn.Linear (no bias) that accumulates its weight's gradient in a buffer kept between steps.
    Its parameters and state dict are nn.Linear's, so a saved model loads as before."""

    gradient_buffer: torch.Tensor | None = None

    def forward(self, x):
        if not torch.is_grad_enabled():
            return super().forward(x)
        device = x.device.type
        autocast = torch.is_autocast_enabled(device) and self.weight.dtype == torch.float32
        dtype = torch.get_autocast_dtype(device) if autocast else self.weight.dtype
        return recast_linear(x, self.weight, None, dtype, self.weight_gradient)

    def weight_gradient(self, left: torch.Tensor, right: torch.Tensor) -> torch.Tensor | None:
        """left @ right, the weight's gradient: written into the kept buffer where the weight has
        none yet (None is returned), else returned for autograd to add as it adds any gradient
        (the later micro-batches of gradient accumulation)."""
        weight = self.weight
        if weight.grad is not None:
            return left.mm(right).to(weight.dtype)
        if self.gradient_buffer is None:
            self.gradient_buffer = torch.empty_like(weight)
        if left.dtype == weight.dtype:
            torch.mm(left, right, out=self.gradient_buffer)
        else:
            self.gradient_buffer.copy_(left.mm(right))
        weight.grad = self.gradient_buffer
        return None


def keep_output_gradient(model) -> bool:
    """Make the model's output layer an OutputLayer where it is a trained nn.Linear without bias."""
    output = model.get_output_embeddings()
    if type(output) is not nn.Linear or output.bias is not None or not output.weight.requires_grad:
        return False
    output.__class__ = OutputLayer
    return True


def drop_output_gradient(model) -> None:
    """Free the kept buffer once training is over."""
    output = model.get_output_embeddings()
    if isinstance(output, OutputLayer):
        output.gradient_buffer = None
