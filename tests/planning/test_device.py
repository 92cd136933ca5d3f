import pytest
import torch

from llm_instruct.cli import UserError
from llm_instruct.planning.device import base_weights_dtype, check_mixed_precision, choose_device, choose_dtype
from llm_instruct.planning.precision import MatmulTiming, bf16_decodes_faster, bf16_trains_slower


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
        check_mixed_precision("cpu", bf16=False, fp16=True, cuda_bf16_supported=False)


def test_bf16_is_refused_on_a_gpu_without_it():
    with pytest.raises(UserError, match=r"^--bf16: this GPU has no bfloat16 support"):
        check_mixed_precision("cuda", bf16=True, fp16=False, cuda_bf16_supported=False)


@pytest.mark.parametrize(
    ("device", "bf16", "fp16", "supported"),
    [
        ("cpu", True, False, False),
        ("cuda", False, True, False),
        ("cuda", True, False, True),
        ("cpu", False, False, False),
    ],
)
def test_mixed_precision_the_device_can_run(device, bf16, fp16, supported):
    check_mixed_precision(device, bf16=bf16, fp16=fp16, cuda_bf16_supported=supported)


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
    ("device", "lora", "bf16", "fp16", "dtype"),
    [
        ("cuda", True, True, False, torch.bfloat16),  # the frozen base in half precision
        ("cuda", True, False, True, torch.float16),
        ("cuda", True, False, False, torch.float32),
        ("cuda", False, True, False, torch.float32),  # full fine-tuning trains fp32 master weights
        ("cpu", True, True, False, torch.float32),
    ],
)
def test_base_weights_dtype(device, lora, bf16, fp16, dtype):
    assert base_weights_dtype(device, lora=lora, bf16=bf16, fp16=fp16) is dtype
