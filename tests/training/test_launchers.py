"""Several processes, as users start them: accelerate launch on one machine, torchrun on two.

torchrun with two processes on one machine differs from the two-node run only in its rendezvous.

Each run trains tiny-bloom-sized data on CPU processes with gloo: the data is split across the
processes (so the optimizer steps halve), one process prints, evaluates and saves.
"""

import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT
from transformers import AutoModelForCausalLM

ENV = {**os.environ, "HF_HUB_OFFLINE": "1"}
# 14 lines in batches of 8 take one process 2 steps an epoch; split over 2 processes, 1 step.
HALVED_STEPS = 1


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def script_args(training_file, base_dir, output_dir):
    return [
        str(ROOT / "instruct_ger.py"),
        "--input-file", str(training_file),
        "--model-name", str(base_dir),
        "--output-dir", str(output_dir),
        "--output-model", "ddp",
        "--epochs", "1",
        "--device", "cpu",
    ]  # fmt: skip


def assert_one_model_from_two_processes(stdout: str, model_dir: Path) -> None:
    assert stdout.count("Start training ...") == 1
    assert stdout.count("Training finished. Wrote model to") == 1
    report = json.loads((model_dir / "training_report.json").read_text())
    assert report["global_step"] == HALVED_STEPS
    AutoModelForCausalLM.from_pretrained(model_dir)


@pytest.mark.skipif(shutil.which("mpirun") is None, reason="accelerate starts CPU processes with mpirun (openmpi-bin)")
def test_accelerate_launch_with_the_shipped_cpu_config(training_file, tiny_bloom_dir, tmp_path):
    command = ["accelerate", "launch", "--config_file", "configs/accelerate_cpu.yaml"]
    command += ["--main_process_port", str(free_port())]
    # Open MPI refuses to start as root unless told; containers and CI run as root.
    env = {**ENV, "OMPI_ALLOW_RUN_AS_ROOT": "1", "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM": "1"}
    result = subprocess.run(
        [*command, *script_args(training_file, tiny_bloom_dir, tmp_path)],
        capture_output=True, text=True, env=env, cwd=ROOT, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    assert_one_model_from_two_processes(result.stdout, tmp_path / "ddp")


def test_two_torchrun_nodes_without_a_shared_folder(training_file, tmp_path):
    """Two launchers as two machines, each with its own output folder; tiny-bloom is built on each."""
    endpoint = f"127.0.0.1:{free_port()}"
    nodes = []
    for node in ("a", "b"):
        command = [sys.executable, "-m", "torch.distributed.run", "--nnodes", "2", "--nproc_per_node", "1"]
        command += ["--rdzv_backend", "c10d", "--rdzv_endpoint", endpoint, "--rdzv_id", "test"]
        args = script_args(training_file, "tiny-bloom", tmp_path / node)
        nodes.append(
            subprocess.Popen([*command, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV)
        )
    outputs = [node.communicate(timeout=300) for node in nodes]
    for node, (_, err) in zip(nodes, outputs, strict=True):
        assert node.returncode == 0, err[-3000:]
    written = [tmp_path / node / "ddp" for node in ("a", "b") if (tmp_path / node / "ddp").exists()]
    assert len(written) == 1  # the global main process saves, on its own machine
    assert_one_model_from_two_processes("".join(out for out, _ in outputs), written[0])
