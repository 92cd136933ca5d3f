"""The output layer's weight gradient, written every step into one buffer that the layer keeps.

The output layer's weight is the model's largest: 50,304 words by 1,024 numbers for the 350m
shape (206 MB), twice that for the tutorial's 1.3B model. Autograd hands its gradient a fresh
tensor every step, and a block that large comes straight from the operating system (glibc maps
anything over 32 MB anew), so every step pays for faulting in and zeroing its pages; where the
weight is tied to the input embedding, autograd copies the block once more to add the lookup's
rows to it. Here the output layer's backward pass writes the product into a buffer it keeps and
hands that buffer to the weight as its gradient; the lookup's rows are then added in place.
The products and sums are the ones autograd computes; on a 2-core CPU a 350m step takes about
a seventh less time (docs/benchmark.md).

Under autocast the product runs in the 16-bit dtype with the weight cast again in the backward
pass, as mixed_precision.RecastLinear does. Only where a single process trains: several
processes reduce each gradient as autograd delivers it, and this one it does not deliver.
"""

import torch
import torch.nn.functional as F
from torch import nn


class _OutputProduct(torch.autograd.Function):
    """F.linear without bias whose weight gradient comes from layer.weight_gradient."""

    @staticmethod
    def forward(ctx, x, weight, layer):
        device = x.device.type
        autocast = torch.is_autocast_enabled(device) and weight.dtype == torch.float32
        ctx.input_dtype, ctx.layer = x.dtype, layer
        ctx.dtype = torch.get_autocast_dtype(device) if autocast else weight.dtype
        x = x.to(ctx.dtype)
        ctx.save_for_backward(x, weight)
        with torch.autocast(device, enabled=False):
            return F.linear(x, weight.to(ctx.dtype))

    @staticmethod
    def backward(ctx, grad):
        x, weight = ctx.saved_tensors
        grad_x = grad_weight = None
        if ctx.needs_input_grad[0]:
            grad_x = grad.matmul(weight.to(ctx.dtype)).to(ctx.input_dtype)
        if ctx.needs_input_grad[1]:
            grad_weight = ctx.layer.weight_gradient(grad.reshape(-1, grad.shape[-1]).t(), x.reshape(-1, x.shape[-1]))
        return grad_x, grad_weight, None


class OutputLayer(nn.Linear):
    """nn.Linear (no bias) that accumulates its weight's gradient in a buffer kept between steps.
    Its parameters and state dict are nn.Linear's, so a saved model loads as before."""

    gradient_buffer: torch.Tensor | None = None

    def forward(self, x):
        if not torch.is_grad_enabled():
            return super().forward(x)
        return _OutputProduct.apply(x, self.weight, self)

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
