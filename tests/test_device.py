import pytest
import torch

from llm_instruct.cli import UserError
from llm_instruct.device import choose_device, choose_dtype


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
