"""The fused GELU and the sparse lookup gradient compute what the model computed before."""

import copy

import torch
from transformers import AutoModelForCausalLM
from transformers.models.bloom.modeling_bloom import BloomGelu

from llm_instruct.models.activations import TanhGelu
from llm_instruct.training.fused import fuse_for_training


def test_the_fused_gelu_is_blooms_gelu_with_the_same_gradient():
    x = torch.linspace(-8, 8, 20001, dtype=torch.float64).requires_grad_()
    y = x.detach().clone().requires_grad_()
    bloom, fused = BloomGelu()(x), TanhGelu()(y)
    torch.testing.assert_close(fused, bloom, rtol=1e-8, atol=1e-9)  # BLOOM rounds sqrt(2/pi) to 8 digits
    upstream = torch.randn(x.shape, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    bloom.backward(upstream)
    fused.backward(upstream)
    torch.testing.assert_close(y.grad, x.grad, rtol=1e-7, atol=1e-9)


def loss_and_gradients(model, batch):
    model.zero_grad(set_to_none=True)
    loss = model(**batch).loss
    loss.backward()
    return loss.detach(), {name: p.grad for name, p in model.named_parameters()}


def test_a_fused_bloom_trains_on_the_same_loss_and_gradients(tiny_bloom_dir):
    model = AutoModelForCausalLM.from_pretrained(tiny_bloom_dir, dtype=torch.float32)
    fused = copy.deepcopy(model)
    fuse_for_training(fused, single_process=True)
    assert not any(isinstance(m, BloomGelu) for m in fused.modules())
    assert fused.get_input_embeddings().sparse and fused.lm_head.weight is fused.get_input_embeddings().weight

    ids = torch.randint(0, model.config.vocab_size, (3, 11), generator=torch.Generator().manual_seed(1))
    batch = {"input_ids": ids, "attention_mask": torch.ones_like(ids), "labels": ids}
    expected_loss, expected = loss_and_gradients(model, batch)
    loss, gradients = loss_and_gradients(fused, batch)
    torch.testing.assert_close(loss, expected_loss)
    assert not gradients["transformer.word_embeddings.weight"].is_sparse  # what the optimizer gets stays dense
    for name, gradient in expected.items():
        torch.testing.assert_close(gradients[name], gradient, rtol=1e-5, atol=1e-6, msg=name)


def test_several_processes_keep_the_dense_lookup_gradient(tiny_bloom_dir):
    model = AutoModelForCausalLM.from_pretrained(tiny_bloom_dir, dtype=torch.float32)
    fuse_for_training(model, single_process=False)
    assert not model.get_input_embeddings().sparse
    assert not any(isinstance(m, BloomGelu) for m in model.modules())
