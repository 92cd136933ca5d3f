"""What several processes need: barriers on the run's own backend, and a process count that fits.

A fresh accelerate PartialState() does not know that a run was started with --device cpu,
and its barrier names a CUDA device for every process: on a machine with one GPU the second
process fails with "invalid device ordinal". The barrier here follows the state the Trainer
was built with, so CPU runs use gloo wherever they run.
"""

import os

import torch

from ..cli import UserError

# Launchers name the processes per machine differently: torchrun, then MPI (accelerate's multi-CPU path).
LOCAL_PROCESS_COUNT_VARIABLES = ("LOCAL_WORLD_SIZE", "OMPI_COMM_WORLD_LOCAL_SIZE", "MPI_LOCALNRANKS")


def wait_for_everyone(state) -> None:
    """A barrier across all processes of the run; nothing for a single process.

    state: the run's accelerate PartialState (TrainingArguments.distributed_state).
    """
    if state.num_processes == 1:
        return
    if state.backend == "nccl":
        torch.distributed.barrier(device_ids=[state.local_process_index])
    else:
        torch.distributed.barrier()


def local_process_count(environ=os.environ) -> int:
    for name in LOCAL_PROCESS_COUNT_VARIABLES:
        if name in environ:
            return int(environ[name])
    return 1


def check_process_count(device: str, processes_per_machine: int, cuda_devices: int) -> None:
    """Refuse more processes per machine than CUDA devices: NCCL would fail with 'invalid usage'."""
    if device == "cuda" and processes_per_machine > cuda_devices:
        raise UserError(
            f"{processes_per_machine} processes per machine but {cuda_devices} CUDA devices; start at most "
            f"{cuda_devices} processes (torchrun --nproc_per_node {cuda_devices}) or add --device cpu"
        )


def is_sharded(trainer) -> bool:
    """Whether the trained weights are split across processes (FSDP, DeepSpeed ZeRO-3)."""
    from transformers.integrations import is_deepspeed_zero3_enabled

    return bool(trainer.is_fsdp_enabled or is_deepspeed_zero3_enabled())
