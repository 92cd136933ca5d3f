"""A linear layer that recasts its weight in the backward pass computes what autocast computes."""

import copy

import pytest
import torch
from transformers import AutoModelForCausalLM

from llm_instruct.models.lora import LoraSettings, add_lora
from llm_instruct.training.mixed_precision import RecastLinear, recast_linears


def autocast_loss_and_gradients(model, batch):
    model.zero_grad(set_to_none=True)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss = model(**batch).loss
    loss.backward()
    return loss.detach(), {name: p.grad for name, p in model.named_parameters() if p.grad is not None}


@pytest.mark.parametrize("lora", [False, True])
def test_the_same_loss_and_gradients_as_autocast_with_its_weight_copies(tiny_bloom_dir, lora):
    model = AutoModelForCausalLM.from_pretrained(tiny_bloom_dir, dtype=torch.float32)
    if lora:
        model = add_lora(model, LoraSettings(4, 8, 0.0), str(tiny_bloom_dir))
    recast = copy.deepcopy(model)
    assert recast_linears(recast) > 0
    assert not any(type(module) is torch.nn.Linear for module in recast.modules())

    ids = torch.randint(0, 400, (3, 13), generator=torch.Generator().manual_seed(2))
    batch = {"input_ids": ids, "attention_mask": torch.ones_like(ids), "labels": ids}
    expected_loss, expected = autocast_loss_and_gradients(model, batch)
    loss, gradients = autocast_loss_and_gradients(recast, batch)
    torch.testing.assert_close(loss, expected_loss)
    assert gradients.keys() == expected.keys()
    for name, gradient in expected.items():
        assert gradients[name].dtype == torch.float32
        torch.testing.assert_close(gradients[name], gradient, rtol=2e-2, atol=1e-4, msg=name)


def test_outside_autocast_it_is_a_plain_linear():
    layer = torch.nn.Linear(8, 4)
    x = torch.randn(2, 8)
    expected = layer(x)
    layer.__class__ = RecastLinear
    torch.testing.assert_close(layer(x), expected, rtol=0, atol=0)
    assert set(layer.state_dict()) == {"weight", "bias"}
