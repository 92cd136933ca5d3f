"""Linear layers prepacked for oneDNN, for answering on a CPU.

Decoding multiplies a handful of rows (one per beam) by every weight of the model, so a step
costs what reading the weights costs. For such products torch's default fp32 kernel (MKL's
sgemm) reads the weights at a fraction of the memory bandwidth; oneDNN's, given the weight
once reordered into its own layout, reads them close to it: on a 2-core AMD EPYC a 5-beam
step of the 350m shape took about half the time (docs/benchmark.md). The products are the
same; their rounding may differ in the last bits, as between any two kernels.

The ops are torch's internal mkldnn ones, so they are used only where they exist and the
model's dtype is one they take; elsewhere the model stays as it is.
"""

import torch
from torch import nn

PACKABLE_DTYPES = (torch.float32, torch.bfloat16)


def packing_available() -> bool:
    mkldnn = torch.ops.mkldnn
    return (
        torch.backends.mkldnn.is_available()
        and hasattr(mkldnn, "_reorder_linear_weight")
        and hasattr(mkldnn, "_linear_pointwise")
    )


class PackedLinear(nn.Module):
    """An nn.Linear's product with its weight in oneDNN's layout; for inference only."""

    def __init__(self, linear: nn.Linear):
        super().__init__()
        self.in_features, self.out_features = linear.in_features, linear.out_features
        self.packed_weight = torch.ops.mkldnn._reorder_linear_weight(linear.weight.detach(), None)
        self.bias = None if linear.bias is None else linear.bias.detach()

    def forward(self, x):
        return torch.ops.mkldnn._linear_pointwise(x, self.packed_weight, self.bias, "none", [], "")


def pack_linears(model) -> int:
    """Replace the model's nn.Linear layers by PackedLinear where a CPU can run them; returns how many.

    The model then answers only: it no longer trains, and it is not saved (its state dict changed).
    """
    if not packing_available() or model.device.type != "cpu" or model.dtype not in PACKABLE_DTYPES:
        return 0
    swapped = 0
    for module in list(model.modules()):
        for name, child in module.named_children():
            if isinstance(child, nn.Linear):
                setattr(module, name, PackedLinear(child))
                swapped += 1
    return swapped
