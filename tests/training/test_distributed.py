"""Barriers on the run's own backend and the process count check, with the machine injected."""

from types import SimpleNamespace

import pytest

from llm_instruct.cli import UserError
from llm_instruct.training.distributed import check_process_count, local_process_count, wait_for_everyone


@pytest.fixture
def barrier_calls(monkeypatch):
    calls = []
    monkeypatch.setattr("torch.distributed.barrier", lambda **kwargs: calls.append(kwargs))
    return calls


def test_a_cpu_run_waits_without_naming_a_device(barrier_calls):
    wait_for_everyone(SimpleNamespace(num_processes=2, backend="gloo", local_process_index=1))
    assert barrier_calls == [{}]  # a CUDA device id here fails on a machine with fewer GPUs than processes


def test_a_cuda_run_waits_on_its_own_device(barrier_calls):
    wait_for_everyone(SimpleNamespace(num_processes=2, backend="nccl", local_process_index=1))
    assert barrier_calls == [{"device_ids": [1]}]


def test_a_single_process_does_not_wait(barrier_calls):
    wait_for_everyone(SimpleNamespace(num_processes=1, backend=None, local_process_index=0))
    assert barrier_calls == []


def test_more_processes_than_gpus_is_refused_with_what_to_change():
    with pytest.raises(UserError) as raised:
        check_process_count("cuda", processes_per_machine=2, cuda_devices=1)
    assert str(raised.value) == (
        "2 processes per machine but 1 CUDA devices; start at most 1 processes "
        "(torchrun --nproc_per_node 1) or add --device cpu"
    )


@pytest.mark.parametrize(
    ("device", "processes", "gpus"), [("cuda", 2, 2), ("cuda", 1, 1), ("cpu", 4, 1), ("cpu", 2, 0)]
)
def test_process_counts_that_fit(device, processes, gpus):
    check_process_count(device, processes_per_machine=processes, cuda_devices=gpus)


@pytest.mark.parametrize(
    ("environ", "count"),
    [({}, 1), ({"LOCAL_WORLD_SIZE": "2"}, 2), ({"OMPI_COMM_WORLD_LOCAL_SIZE": "3"}, 3)],
)
def test_processes_per_machine_from_the_launchers_variables(environ, count):
    assert local_process_count(environ) == count
