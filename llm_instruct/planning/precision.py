"""Whether bfloat16 pays on this CPU: decided by a few milliseconds of measurement, not by CPU flags.

The flags mislead both ways. On an Intel Xeon with AVX512-BF16 but no AMX, a bf16 matrix
product of training size ran at half the fp32 rate, so --bf16 trained slower, while beam
search decoded 1.55x faster in bf16: decoding reads every weight for a handful of rows,
and bf16 weights are half the bytes. So each use is measured at its own shape.
"""

import time
from dataclasses import dataclass

import torch

from .device import choose_training_precision

# Rows x inner x columns. Training multiplies hundreds of token rows by a weight matrix;
# decoding with 5 beams multiplies 5 rows by a large one, where reading the weights dominates.
TRAINING_SHAPE = (64, 1024, 1024)
DECODING_SHAPE = (5, 1024, 4096)
# Repeats stop once a dtype has taken this long: emulated bf16 can be 30x slower than fp32,
# and one product already shows that.
BUDGET_SECONDS = 0.1
# bf16 must beat fp32 by this factor before generate.py --dtype auto, or training's
# --precision auto, picks it: a smaller gain is within what a busy machine's timings wander.
DECODING_MARGIN = 1.2
TRAINING_MARGIN = 1.2


@dataclass(frozen=True)
class MatmulTiming:
    fp32_seconds: float
    bf16_seconds: float

    @property
    def bf16_speedup(self) -> float:
        return self.fp32_seconds / self.bf16_seconds

    def describe(self) -> str:
        return f"bfloat16 {self.bf16_seconds * 1e3:.1f} ms against float32 {self.fp32_seconds * 1e3:.1f} ms"


def _best_seconds(dtype: torch.dtype, shape: tuple[int, int, int], repeats: int) -> float:
    rows, inner, columns = shape
    generator = torch.Generator().manual_seed(0)
    a = torch.randn(rows, inner, generator=generator).to(dtype)
    b = torch.randn(inner, columns, generator=generator).to(dtype)
    torch.mm(a, b)  # warm-up: kernel selection, first touch of the memory
    best, spent = float("inf"), 0.0
    for _ in range(repeats):
        started = time.perf_counter()
        torch.mm(a, b)
        seconds = time.perf_counter() - started
        best, spent = min(best, seconds), spent + seconds
        if spent > BUDGET_SECONDS:
            break
    return best


def time_matmuls(shape: tuple[int, int, int], repeats: int = 5) -> MatmulTiming:
    """The same product in float32 and in bfloat16 on the CPU, best of a few repeats each."""
    return MatmulTiming(_best_seconds(torch.float32, shape, repeats), _best_seconds(torch.bfloat16, shape, repeats))


def bf16_trains_slower(timing: MatmulTiming) -> bool:
    return timing.bf16_speedup < 1


def bf16_decodes_faster(timing: MatmulTiming) -> bool:
    return timing.bf16_speedup >= DECODING_MARGIN


def bf16_trains_faster(timing: MatmulTiming) -> bool:
    return timing.bf16_speedup >= TRAINING_MARGIN


def bf16_decodes_faster_here() -> bool:
    """Whether this CPU decodes faster in bfloat16, measured at a decoding shape."""
    return bf16_decodes_faster(time_matmuls(DECODING_SHAPE))


def training_precision(requested: str, device: str, cuda_bf16_supported: bool) -> tuple[str, str | None]:
    """The precision a run trains in, and a line for the user where it was chosen for them or
    where an explicit --bf16 will likely make this CPU slower."""
    timing = time_matmuls(TRAINING_SHAPE) if device == "cpu" and requested in ("auto", "bf16") else None
    chosen = choose_training_precision(
        requested,
        device,
        cuda_bf16_supported=cuda_bf16_supported,
        bf16_trains_faster=timing is not None and bf16_trains_faster(timing),
    )
    if requested == "auto" and chosen == "bf16":
        why = (
            f"on this CPU a matrix product of training size takes {timing.describe()}"
            if timing
            else ("this GPU supports bfloat16")
        )
        return chosen, f"Notice: {why}, so this run trains with bf16 mixed precision (--precision fp32 to change)."
    if requested == "bf16" and timing is not None and bf16_trains_slower(timing):
        return chosen, (
            f"Warning: on this CPU a matrix product of training size takes {timing.describe()}; "
            f"--bf16 will likely train slower than without it."
        )
    return chosen, None
