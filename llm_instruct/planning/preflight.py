"""Before the weights load: does the run fit the machine's memory and disk, and which optimizer fits?

The kernel ends a process that runs out of memory without a word (exit 137), and a full
disk ends a run after its first half hour. Both are knowable from the model's shape, so
the run is planned first, with memory.py's estimates, and refused with one line that says
what would fit, before a 3 GB download or an hour of training is spent.
"""

import dataclasses
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from ..cli import UserError, log
from .memory import GIB, MemoryPlan, estimate_peak_bytes

# An estimate this close to the limit is warned about: the estimates are good to about +-25%.
WARNING_SHARE = 0.85
# The Trainer's optimizer names offered by --optim: AdamW fused and unfused (the same updates),
# Adafactor (factored moments: next to no state) and bitsandbytes' 8-bit AdamW (CUDA).
OPTIMIZERS = ("adamw_torch_fused", "adamw_torch", "adafactor", "adamw_bnb_8bit")
LIGHTER_OPTIMIZER = "adafactor"
DEFAULT_OPTIMIZER = "adamw_torch_fused"


def gib(value: float) -> str:
    return f"{value / GIB:.1f} GiB"


def available_ram(meminfo: str, cgroup_limit: int | None = None, cgroup_usage: int = 0) -> float:
    """What a new process can still use: MemAvailable, or less where a cgroup (a container) caps it."""
    fields = {line.split(":")[0]: line.split()[1] for line in meminfo.splitlines() if ":" in line}
    available = int(fields["MemAvailable"]) * 1024
    if cgroup_limit is not None:
        available = min(available, cgroup_limit - cgroup_usage)
    return float(available)


def _cgroup_memory() -> tuple[int | None, int]:
    for limit_file, usage_file in (
        ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current"),  # cgroup v2
        ("/sys/fs/cgroup/memory/memory.limit_in_bytes", "/sys/fs/cgroup/memory/memory.usage_in_bytes"),  # v1
    ):
        try:
            limit = Path(limit_file).read_text().strip()
            usage = int(Path(usage_file).read_text().strip())
        except (OSError, ValueError):
            continue
        # "max", or v1's huge number for no limit.
        return (int(limit) if limit.isdigit() and int(limit) < 2**60 else None), usage
    return None, 0


def processes_sharing_memory(device: str, processes_per_machine: int) -> int:
    """CPU processes share the machine's RAM; on CUDA each process has a GPU of its own."""
    return processes_per_machine if device == "cpu" else 1


def available_memory(device: str) -> tuple[float, str]:
    """Memory this process may use on its device, and what the figure is: on CUDA its own GPU's
    (each process of a run has one; the launcher names it in LOCAL_RANK)."""
    if device == "cuda":
        import torch

        return float(torch.cuda.mem_get_info(int(os.environ.get("LOCAL_RANK", "0")))[0]), "free GPU memory"
    limit, usage = _cgroup_memory()
    return available_ram(Path("/proc/meminfo").read_text(), limit, usage), "available RAM"


def free_disk(directory) -> float:
    """Free space where directory is or would be created."""
    path = Path(directory).absolute()
    while not path.exists():
        path = path.parent
    return float(shutil.disk_usage(path).free)


@dataclass(frozen=True)
class Alternative:
    flag: str
    plan: MemoryPlan


def alternatives(plan: MemoryPlan) -> list[Alternative]:
    """Changes a user can make with one flag, each with the plan it leads to."""
    options = []
    if plan.optimizer != LIGHTER_OPTIMIZER and not plan.lora:
        options.append(
            Alternative(f"--optim {LIGHTER_OPTIMIZER}", dataclasses.replace(plan, optimizer=LIGHTER_OPTIMIZER))
        )
    if not plan.lora:
        # LoRA's adapters are about 0.2% of the weights for the usual targets.
        lora = dataclasses.replace(plan, lora=True, trainable=max(1, plan.parameters // 500))
        options.append(Alternative("--lora", lora))
    if not plan.gradient_checkpointing:
        options.append(Alternative("--gradient-checkpointing", dataclasses.replace(plan, gradient_checkpointing=True)))
    if plan.batch_size > 1:
        half = plan.batch_size // 2
        options.append(Alternative(f"--batch-size {half}", dataclasses.replace(plan, batch_size=half)))
    if plan.sequence_length > 64:
        half = plan.sequence_length // 2
        options.append(Alternative(f"--max-length {half}", dataclasses.replace(plan, sequence_length=half)))
    return options


def choose_optimizer(requested: str, plan: MemoryPlan, available: float, processes: int = 1) -> tuple[str, str | None]:
    """The optimizer, and a notice when auto chose the lighter one because AdamW would not fit.

    AdamW's two moments are 8 bytes a weight: for the 1b5 model alone 10 GB, so on a 24 GB
    machine the tutorial's full fine-tune fits only with Adafactor's factored moments.
    """
    if requested != "auto":
        return requested, None
    adamw = estimate_peak_bytes(dataclasses.replace(plan, optimizer=DEFAULT_OPTIMIZER)) * processes
    if plan.lora or adamw <= available * WARNING_SHARE:
        return DEFAULT_OPTIMIZER, None
    lighter = estimate_peak_bytes(dataclasses.replace(plan, optimizer=LIGHTER_OPTIMIZER)) * processes
    if lighter > available:
        return DEFAULT_OPTIMIZER, None  # neither fits: the memory check says what would
    return LIGHTER_OPTIMIZER, (
        f"Notice: AdamW would need about {gib(adamw)} with {gib(available)} available, so this run trains with "
        f"Adafactor (about {gib(lighter)}); --optim adamw_torch_fused insists on AdamW."
    )


@dataclass(frozen=True)
class Verdict:
    """What the preflight makes of an estimate: the run goes ahead (with a warning when close),
    or is refused; message says it in one line."""

    refused: bool
    message: str | None  # None: fits comfortably


def memory_verdict(plan: MemoryPlan, available: float, what: str, processes: int = 1) -> Verdict:
    """processes: how many processes share this memory (several CPU processes share the RAM)."""
    needed = estimate_peak_bytes(plan) * processes
    if needed <= available * WARNING_SHARE:
        return Verdict(False, None)
    per_machine = f" for {processes} processes" if processes > 1 else ""
    if needed <= available:
        return Verdict(
            False, f"this run needs about {gib(needed)}{per_machine}, close to the {gib(available)} of {what}"
        )
    fitting = [
        f"{option.flag} ({gib(estimate_peak_bytes(option.plan) * processes)})"
        for option in alternatives(plan)
        if estimate_peak_bytes(option.plan) * processes <= available * WARNING_SHARE
    ]
    advice = f"would fit: {', '.join(fitting)}; or a smaller model" if fitting else "try a smaller model"
    return Verdict(
        True,
        f"this run needs about {gib(needed)}{per_machine} but only {gib(available)} of {what} is there; "
        f"{advice} (--ignore-preflight tries anyway)",
    )


def disk_verdict(needed: float, free: float, directory) -> Verdict:
    if needed <= free * WARNING_SHARE:
        return Verdict(False, None)
    if needed <= free:
        return Verdict(
            False, f"the model directory and checkpoints need about {gib(needed)}, close to the {gib(free)} free"
        )
    return Verdict(
        True,
        f"the model directory and checkpoints need about {gib(needed)} but {directory} has {gib(free)} free; "
        f"free some space, choose another --output-dir, or pass --no-checkpoints (--ignore-preflight tries anyway)",
    )


def enforce(verdict: Verdict) -> None:
    """Refuse the run, or warn, as the verdict says."""
    if verdict.refused:
        raise UserError(verdict.message)
    if verdict.message:
        log(f"Warning: {verdict.message}.")


def check_bitsandbytes(device: str) -> None:
    """bitsandbytes' 8-bit optimizers run on CUDA, and the library is an extra install."""
    if device != "cuda":
        raise UserError("--optim adamw_bnb_8bit runs on CUDA only; on a CPU use adafactor or adamw_torch_fused")
    try:
        import bitsandbytes  # noqa: F401
    except ImportError:
        raise UserError("--optim adamw_bnb_8bit needs the bitsandbytes library: pip install bitsandbytes") from None
