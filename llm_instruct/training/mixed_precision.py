"""Mixed precision without a second copy of the weights.

Under autocast a linear layer multiplies in bf16 (or fp16): it casts its float32 weight to a
16-bit copy, and autograd keeps that copy until the layer's backward pass needs it, so every
weight lives twice during a step, 2 bytes a parameter more than float32 training (0.7 GB for
the 350m shape, 2.6 GB for the tutorial's 1.3B model). Here a linear layer keeps only a
reference to its float32 weight and casts it again in the backward pass: the same products in
the same precision, for one more cast of each weight per step.
"""

import torch
import torch.nn.functional as F
from torch import nn


class _RecastLinear(torch.autograd.Function):
    """F.linear in dtype that saves the weight itself, not its cast."""

    @staticmethod
    def forward(ctx, x, weight, bias, dtype, weight_gradient):
        ctx.input_dtype, ctx.dtype, ctx.has_bias = x.dtype, dtype, bias is not None
        ctx.weight_gradient = weight_gradient
        x = x.to(dtype)
        ctx.save_for_backward(x, weight)
        with torch.autocast(x.device.type, enabled=False):
            return F.linear(x, weight.to(dtype), None if bias is None else bias.to(dtype))

    @staticmethod
    def backward(ctx, grad):
        x, weight = ctx.saved_tensors
        grad_x = grad_weight = grad_bias = None
        if ctx.needs_input_grad[0]:
            grad_x = grad.matmul(weight.to(ctx.dtype)).to(ctx.input_dtype)
        rows = grad.reshape(-1, grad.shape[-1])
        if ctx.needs_input_grad[1]:
            left, right = rows.t(), x.reshape(-1, x.shape[-1])
            if ctx.weight_gradient is None:
                grad_weight = left.matmul(right).to(weight.dtype)
            else:
                grad_weight = ctx.weight_gradient(left, right)
        if ctx.has_bias and ctx.needs_input_grad[2]:
            grad_bias = rows.sum(0).to(weight.dtype)
        return grad_x, grad_weight, grad_bias, None, None


def recast_linear(x, weight, bias, dtype, weight_gradient=None):
    """F.linear(x, weight, bias) in dtype, keeping no cast of the weight between the passes.

    weight_gradient(left, right): where given, computes the weight's gradient, left @ right, in
    its own way (output_gradient.py) and returns it, or None where it delivered it itself.
    """
    return _RecastLinear.apply(x, weight, bias, dtype, weight_gradient)


class RecastLinear(nn.Linear):
    """nn.Linear that, under autocast, keeps no 16-bit copy of its weight between the passes.

    Outside autocast (answering, evaluation loss in float32) it is nn.Linear; its parameters
    and state dict are nn.Linear's, so a saved model loads as before.
    """

    def forward(self, x):
        device = x.device.type
        if not torch.is_autocast_enabled(device) or self.weight.dtype != torch.float32:
            return super().forward(x)
        return recast_linear(x, self.weight, self.bias, torch.get_autocast_dtype(device))


def recast_linears(model) -> int:
    """Make every nn.Linear of the model a RecastLinear; returns how many."""
    linears = [module for module in model.modules() if type(module) is nn.Linear]
    for module in linears:
        module.__class__ = RecastLinear
    return len(linears)
