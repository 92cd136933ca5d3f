"""The memory estimate as a pure function against measured peaks, and the preflight decisions."""

import dataclasses

import pytest

from llm_instruct.cli import UserError
from llm_instruct.planning.memory import GIB, MemoryPlan, checkpoint_bytes, estimate_peak_bytes
from llm_instruct.planning.preflight import (
    available_memory,
    available_ram,
    choose_optimizer,
    disk_verdict,
    enforce,
    memory_verdict,
    processes_sharing_memory,
)

# Random BLOOMs of the tutorial's shapes (bench/benchmark.py), batch 8 on the example file:
# its longest example has 47 tokens, its widest batch about 100 answer tokens.
SHAPES = {"1b5": (1_311_629_312, 2048, 3_145_728), "350m": (355_045_376, 1024, 1_572_864)}


def plan(shape, mode, device="cpu", mixed_precision=False, optimizer="adamw_torch_fused", answer_logits_only=True):
    parameters, hidden, lora_parameters = SHAPES[shape]
    return MemoryPlan(
        parameters=parameters,
        trainable=None if mode == "full" else lora_parameters,
        hidden_size=hidden,
        layers=24,
        heads=16,
        vocab_size=50304,
        batch_size=8,
        sequence_length=47,
        device=device,
        lora=mode == "lora",
        mixed_precision=mixed_precision,
        optimizer=optimizer,
        answer_logits_only=answer_logits_only,
        answer_positions=100,
    )


@pytest.mark.parametrize(
    ("row", "measured_gib"),
    [
        # Measured before the output layer ran on answer positions alone (full logits), training only:
        (plan("1b5", "full", answer_logits_only=False), 22.3),  # 2-core Intel Xeon, peak RSS
        (plan("1b5", "lora", answer_logits_only=False), 6.9),
        (plan("350m", "full", answer_logits_only=False), 6.7),
        (plan("350m", "lora", answer_logits_only=False), 2.6),
        (plan("1b5", "full", "cuda", True, answer_logits_only=False), 24.3),  # NVIDIA H200, nvidia-smi
        # With answer-only logits (README's benchmark section). Whole instruct_ger.py runs on a 2-core AMD EPYC:
        (plan("350m", "lora"), 2.66),
        (plan("1b5", "full", optimizer="adafactor"), 13.06),  # the default run on a 24 GiB machine
        (plan("1b5", "lora"), 6.86),
        # NVIDIA H200, torch.cuda.max_memory_allocated: training rows of bench/benchmark.py, and a whole LoRA run.
        (plan("1b5", "full", "cuda", True), 20.0),
        (plan("1b5", "lora", "cuda", True), 3.06),
    ],
)
def test_estimate_within_a_quarter_of_the_measured_peak(row, measured_gib):
    assert estimate_peak_bytes(row) / GIB == pytest.approx(measured_gib, rel=0.25)


def test_what_each_choice_costs():
    full = plan("1b5", "full")
    assert estimate_peak_bytes(plan("1b5", "lora")) < estimate_peak_bytes(full) / 3
    # Adafactor drops AdamW's 8 bytes of moments per weight: 10 GB for 1.3 billion weights.
    saved = estimate_peak_bytes(full) - estimate_peak_bytes(dataclasses.replace(full, optimizer="adafactor"))
    assert saved / 1e9 == pytest.approx(1.31 * 7.95, rel=0.01)
    assert estimate_peak_bytes(dataclasses.replace(full, gradient_checkpointing=True)) < estimate_peak_bytes(full)
    assert estimate_peak_bytes(dataclasses.replace(full, batch_size=4)) < estimate_peak_bytes(full)
    # LoRA with mixed precision on CUDA keeps the frozen base in 16 bits.
    assert estimate_peak_bytes(plan("1b5", "lora", "cuda", True)) / GIB < 6
    assert checkpoint_bytes(full) / 1e9 == pytest.approx(1.31 * 12, rel=0.01)  # fp32 weights and AdamW moments


def test_refusal_names_both_figures_and_what_would_fit():
    with pytest.raises(UserError) as raised:
        enforce(memory_verdict(plan("1b5", "full"), 16 * GIB, "available RAM"))
    assert str(raised.value) == (
        "this run needs about 21.5 GiB but only 16.0 GiB of available RAM is there; would fit: "
        "--optim adafactor (11.8 GiB), --lora (6.9 GiB); or a smaller model (--ignore-preflight tries anyway)"
    )


def test_close_to_the_limit_warns_and_goes_on(capsys):
    enforce(memory_verdict(plan("1b5", "lora"), 7.5 * GIB, "available RAM"))
    assert capsys.readouterr().err == "Warning: this run needs about 6.9 GiB, close to the 7.5 GiB of available RAM.\n"
    enforce(memory_verdict(plan("1b5", "lora"), 16 * GIB, "available RAM"))
    assert capsys.readouterr().err == ""


def test_several_processes_on_one_machine_each_hold_a_copy():
    with pytest.raises(UserError, match=r"^this run needs about 13\.8 GiB for 2 processes but only 10\.0 GiB"):
        enforce(memory_verdict(plan("1b5", "lora"), 10 * GIB, "available RAM", processes=2))


@pytest.mark.parametrize(
    ("available_gib", "optimizer", "notice"),
    [
        (64, "adamw_torch_fused", None),  # AdamW fits
        (23.5, "adafactor", "Notice: AdamW would need about 21.5 GiB with 23.5 GiB available"),  # a 24 GiB machine
        (8, "adamw_torch_fused", None),  # neither fits: the memory check will refuse with advice
    ],
)
def test_auto_optimizer_is_adafactor_only_where_adamw_would_not_fit(available_gib, optimizer, notice):
    chosen, message = choose_optimizer("auto", plan("1b5", "full"), available_gib * GIB)
    assert chosen == optimizer
    assert (message or "").startswith(notice or "")
    assert (message is None) == (notice is None)


def test_a_named_optimizer_is_kept():
    assert choose_optimizer("adamw_torch", plan("1b5", "full"), 1 * GIB) == ("adamw_torch", None)


def test_disk_check(tmp_path, capsys):
    enforce(disk_verdict(5 * GIB, 100 * GIB, tmp_path))
    enforce(disk_verdict(5 * GIB, 5.5 * GIB, tmp_path))
    assert capsys.readouterr().err.startswith("Warning: the model directory and checkpoints need about 5.0 GiB")
    with pytest.raises(UserError) as raised:
        enforce(disk_verdict(36.0 * GIB, 20 * GIB, tmp_path))
    assert str(raised.value) == (
        f"the model directory and checkpoints need about 36.0 GiB but {tmp_path} has 20.0 GiB free; free some "
        f"space, choose another --output-dir, or pass --no-checkpoints (--ignore-preflight tries anyway)"
    )


MEMINFO = "MemTotal:       24000000 kB\nMemFree:        1000000 kB\nMemAvailable:   20000000 kB\n"


def test_available_ram_is_the_smaller_of_memavailable_and_the_cgroup_room():
    assert available_ram(MEMINFO) == 20000000 * 1024
    assert available_ram(MEMINFO, cgroup_limit=8 * GIB, cgroup_usage=2 * GIB) == 6 * GIB


def test_each_gpu_process_is_compared_with_its_own_gpu(monkeypatch):
    """torchrun on eight 80 GB GPUs: each process needs its own estimate on its own GPU, not eight on one."""
    assert processes_sharing_memory("cuda", 8) == 1
    assert processes_sharing_memory("cpu", 2) == 2  # CPU processes share the machine's RAM
    asked = []
    monkeypatch.setattr("torch.cuda.mem_get_info", lambda device: asked.append(device) or (79 * GIB, 80 * GIB))
    monkeypatch.setenv("LOCAL_RANK", "3")
    assert available_memory("cuda") == (79 * GIB, "free GPU memory")
    assert asked == [3]
