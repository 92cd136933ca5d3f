"""Device and dtype choice, as pure functions so that the CUDA paths are testable on a CPU."""

from pathlib import Path

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


def check_mixed_precision(device: str, *, bf16: bool, fp16: bool, cuda_bf16_supported: bool) -> None:
    """Refuse mixed precision the device cannot run. Master weights stay float32 either way."""
    if fp16 and device == "cpu":
        raise UserError("--fp16 trains on CUDA only; on a CPU use --bf16 or full precision")
    if bf16 and device == "cuda" and not cuda_bf16_supported:
        raise UserError("--bf16: this GPU has no bfloat16 support (it came with Ampere); use --fp16")


def cpu_has_native_bf16(cpuinfo: str | None = None) -> bool:
    """Whether the CPU computes in bfloat16 natively (AVX512-BF16 or AMX); elsewhere it is emulated and slow."""
    if cpuinfo is None:
        path = Path("/proc/cpuinfo")
        cpuinfo = path.read_text() if path.exists() else ""
    return bool({"avx512_bf16", "amx_bf16"} & set(cpuinfo.split()))
