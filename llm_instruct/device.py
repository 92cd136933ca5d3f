"""Device and dtype choice, as pure functions so that the CUDA paths are testable on a CPU."""

import torch

from .cli import UserError

DTYPES = {"float16": torch.float16, "bfloat16": torch.bfloat16, "float32": torch.float32}


def choose_device(requested: str, cuda_available: bool) -> str:
    if requested == "auto":
        return "cuda" if cuda_available else "cpu"
    if requested == "cuda" and not cuda_available:
        raise UserError("--device cuda: no CUDA device is available (try --device cpu or --device auto)")
    return requested


def choose_dtype(requested: str, device: str) -> torch.dtype:
    """The dtype for inference. auto: float16 on CUDA as in the tutorial, float32 on the CPU,
    where half precision is slow and often unsupported; a CPU gets half precision only when asked."""
    if requested == "auto":
        return torch.float16 if device == "cuda" else torch.float32
    return DTYPES[requested]


def resolve_device(requested: str) -> str:
    return choose_device(requested, torch.cuda.is_available())
