"""Device and dtype choice, as pure functions so that the CUDA paths are testable on a CPU."""

import torch

from ..cli import UserError

DTYPES = {"float16": torch.float16, "bfloat16": torch.bfloat16, "float32": torch.float32}
# Training precisions besides fp32: float32 weights, 16-bit matrix products.
MIXED_PRECISIONS = ("bf16", "fp16")


def choose_device(requested: str, cuda_available: bool) -> str:
    if requested == "auto":
        return "cuda" if cuda_available else "cpu"
    if requested == "cuda" and not cuda_available:
        raise UserError("--device cuda: no CUDA device is available (try --device cpu or --device auto)")
    return requested


def choose_dtype(requested: str, device: str, bf16_decodes_faster: bool = False) -> torch.dtype:
    """The dtype for inference. auto: float16 on CUDA as in the tutorial; on a CPU bfloat16 where it
    measurably decodes faster (precision.py), else float32. float16 on a CPU only when asked."""
    if requested == "auto":
        if device == "cuda":
            return torch.float16
        return torch.bfloat16 if bf16_decodes_faster else torch.float32
    return DTYPES[requested]


def resolve_device(requested: str) -> str:
    return choose_device(requested, torch.cuda.is_available())


def choose_training_precision(
    requested: str, device: str, *, cuda_bf16_supported: bool, bf16_trains_faster: bool
) -> str:
    """fp32, bf16 or fp16. auto: on CUDA bf16 where the GPU has it (from Ampere on), else fp32; on a
    CPU bf16 where a product of training size was measured clearly faster in it (precision.py),
    else fp32. fp16 needs loss scaling and overflows easily, so it is only taken when asked."""
    if requested != "auto":
        return requested
    if device == "cuda":
        return "bf16" if cuda_bf16_supported else "fp32"
    return "bf16" if bf16_trains_faster else "fp32"


def check_mixed_precision(device: str, precision: str, *, cuda_bf16_supported: bool) -> None:
    """Refuse mixed precision the device cannot run. Trained weights stay float32 either way."""
    if precision == "fp16" and device == "cpu":
        raise UserError("--fp16 trains on CUDA only; on a CPU use --bf16 or full precision")
    if precision == "bf16" and device == "cuda" and not cuda_bf16_supported:
        raise UserError("--bf16: this GPU has no bfloat16 support (it came with Ampere); use --fp16")


def base_weights_dtype(device: str, *, lora: bool, precision: str) -> torch.dtype:
    """The dtype the base model is loaded in for training.

    LoRA on CUDA with mixed precision keeps the frozen base in that half precision: it is
    never updated, and halving it is most of the memory LoRA can save. Trained weights (the
    full model, or the adapters) stay float32: small updates vanish in half precision.
    """
    if lora and device == "cuda" and precision in MIXED_PRECISIONS:
        return torch.bfloat16 if precision == "bf16" else torch.float16
    return torch.float32
