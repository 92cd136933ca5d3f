import pytest
import torch

from llm_instruct.cli import UserError
from llm_instruct.device import check_mixed_precision, choose_device, choose_dtype, cpu_has_native_bf16


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


def test_native_bf16_is_read_from_the_cpu_flags():
    assert cpu_has_native_bf16("flags : fpu avx2 avx512f avx512_bf16 amx_tile")
    assert not cpu_has_native_bf16("flags : fpu avx2 fma f16c")
