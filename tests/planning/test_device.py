import pytest
import torch

from llm_instruct.cli import UserError
from llm_instruct.planning.device import (
    base_weights_dtype,
    check_mixed_precision,
    choose_device,
    choose_dtype,
    choose_training_precision,
)
from llm_instruct.planning.precision import MatmulTiming, bf16_decodes_faster, bf16_trains_slower, training_precision


@pytest.mark.parametrize(
    ("requested", "cuda_available", "device"),
    [("auto", True, "cuda"), ("auto", False, "cpu"), ("cpu", True, "cpu"), ("cuda", True, "cuda")],
)
def test_choose_device(requested, cuda_available, device):
    assert choose_device(requested, cuda_available) == device


def test_cuda_without_cuda_is_a_user_error():
    with pytest.raises(UserError, match=r"^--device cuda: no CUDA device is available"):
        choose_device("cuda", cuda_available=False)


@pytest.mark.parametrize(
    ("requested", "device", "dtype"),
    [
        ("auto", "cuda", torch.float16),  # the tutorial's model.half().cuda()
        ("auto", "cpu", torch.float32),  # never half precision on a CPU unless asked
        ("bfloat16", "cuda", torch.bfloat16),
        ("float16", "cpu", torch.float16),
        ("float32", "cuda", torch.float32),
    ],
)
def test_choose_dtype(requested, device, dtype):
    assert choose_dtype(requested, device) is dtype


def test_auto_dtype_on_a_cpu_follows_the_measurement():
    assert choose_dtype("auto", "cpu", bf16_decodes_faster=True) is torch.bfloat16
    assert choose_dtype("auto", "cuda", bf16_decodes_faster=True) is torch.float16
    assert choose_dtype("float32", "cpu", bf16_decodes_faster=True) is torch.float32


def test_fp16_training_is_refused_on_the_cpu():
    with pytest.raises(UserError, match=r"^--fp16 trains on CUDA only"):
        check_mixed_precision("cpu", "fp16", cuda_bf16_supported=False)


def test_bf16_is_refused_on_a_gpu_without_it():
    with pytest.raises(UserError, match=r"^--bf16: this GPU has no bfloat16 support"):
        check_mixed_precision("cuda", "bf16", cuda_bf16_supported=False)


@pytest.mark.parametrize(
    ("device", "precision", "supported"),
    [
        ("cpu", "bf16", False),
        ("cuda", "fp16", False),
        ("cuda", "bf16", True),
        ("cpu", "fp32", False),
        ("cpu", "auto", False),
    ],
)
def test_mixed_precision_the_device_can_run(device, precision, supported):
    check_mixed_precision(device, precision, cuda_bf16_supported=supported)


@pytest.mark.parametrize(
    ("requested", "device", "cuda_bf16", "faster", "chosen"),
    [
        ("auto", "cuda", True, False, "bf16"),  # Ampere and later
        ("auto", "cuda", False, False, "fp32"),  # older GPUs: fp16 needs loss scaling, so only when asked
        ("auto", "cpu", False, True, "bf16"),  # measured clearly faster here
        ("auto", "cpu", False, False, "fp32"),
        ("fp32", "cpu", False, True, "fp32"),  # an explicit choice wins
        ("bf16", "cpu", False, False, "bf16"),
        ("fp16", "cuda", True, False, "fp16"),
    ],
)
def test_training_precision_choice(requested, device, cuda_bf16, faster, chosen):
    assert choose_training_precision(requested, device, cuda_bf16_supported=cuda_bf16, bf16_trains_faster=faster) == (
        chosen
    )


@pytest.mark.parametrize(
    ("fp32_ms", "bf16_ms", "requested", "chosen", "message"),
    [
        (
            15.0, 10.0, "auto", "bf16",
            (
                "Notice: on this CPU a matrix product of training size takes bfloat16 10.0 ms against float32 "
                "15.0 ms, so this run trains with bf16 mixed precision (--precision fp32 to change)."
            ),
        ),
        (11.0, 10.0, "auto", "fp32", None),  # faster, but within the margin
        (10.0, 20.0, "auto", "fp32", None),  # AVX512-BF16 without AMX
        (
            10.0, 20.0, "bf16", "bf16",
            (
                "Warning: on this CPU a matrix product of training size takes bfloat16 20.0 ms against float32 "
                "10.0 ms; --bf16 will likely train slower than without it."
            ),
        ),
    ],
)  # fmt: skip
def test_auto_precision_on_a_cpu_follows_the_injected_timing(monkeypatch, fp32_ms, bf16_ms, requested, chosen, message):
    timing = MatmulTiming(fp32_ms / 1e3, bf16_ms / 1e3)
    monkeypatch.setattr("llm_instruct.planning.precision.time_matmuls", lambda shape, repeats=5: timing)
    assert training_precision(requested, "cpu", cuda_bf16_supported=False) == (chosen, message)


@pytest.mark.parametrize(
    ("fp32_ms", "bf16_ms", "trains_slower", "decodes_faster"),
    [
        (16.0, 8.0, False, True),  # native bf16 (AMX): faster everywhere
        (10.0, 20.0, True, False),  # AVX512-BF16 without AMX at training size: half the fp32 rate
        (17.0, 11.0, False, True),  # the same CPU decoding: bf16 weights are half the bytes to read
        (16.0, 570.0, True, False),  # emulated bf16 (no bf16 instructions)
        (10.0, 9.0, False, False),  # faster, but within the margin that decoding asks for
    ],
)
def test_bf16_decisions_follow_the_timings(fp32_ms, bf16_ms, trains_slower, decodes_faster):
    timing = MatmulTiming(fp32_ms / 1e3, bf16_ms / 1e3)
    assert bf16_trains_slower(timing) is trains_slower
    assert bf16_decodes_faster(timing) is decodes_faster


@pytest.mark.parametrize(
    ("device", "lora", "precision", "dtype"),
    [
        ("cuda", True, "bf16", torch.bfloat16),  # the frozen base in half precision
        ("cuda", True, "fp16", torch.float16),
        ("cuda", True, "fp32", torch.float32),
        ("cuda", False, "bf16", torch.float32),  # full fine-tuning trains fp32 master weights
        ("cpu", True, "bf16", torch.float32),
    ],
)
def test_base_weights_dtype(device, lora, precision, dtype):
    assert base_weights_dtype(device, lora=lora, precision=precision) is dtype
