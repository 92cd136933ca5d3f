"""The output layer's kept gradient buffer gives the gradients autograd gives, step after step."""

import contextlib
import copy

import pytest
import torch
from conftest import build_tiny_llama, file_texts
from transformers import AutoModelForCausalLM

from llm_instruct.models.activations import fuse_activations
from llm_instruct.training.fused import fuse_for_training, sparse_tied_embedding_gradient
from llm_instruct.training.mixed_precision import recast_linears
from llm_instruct.training.output_gradient import OutputLayer, drop_output_gradient, keep_output_gradient


def batch(vocab_size: int, seed: int) -> dict:
    ids = torch.randint(0, vocab_size, (3, 11), generator=torch.Generator().manual_seed(seed))
    return {"input_ids": ids, "attention_mask": torch.ones_like(ids), "labels": ids}


def gradients(model, batches: list[dict], bf16: bool = False) -> dict:
    """The summed gradients of batches (gradient accumulation), after zeroing as the Trainer does."""
    model.zero_grad(set_to_none=True)
    for micro_batch in batches:
        with torch.autocast("cpu", dtype=torch.bfloat16) if bf16 else contextlib.nullcontext():
            loss = model(**micro_batch).loss
        loss.backward()
    return {name: p.grad.clone() for name, p in model.named_parameters() if p.grad is not None}


def assert_identical(got: dict, expected: dict) -> None:
    assert got.keys() == expected.keys()
    for name, gradient in expected.items():
        torch.testing.assert_close(got[name], gradient, rtol=0, atol=0, msg=name)


@pytest.fixture
def tiny_bloom(tiny_bloom_dir):
    return AutoModelForCausalLM.from_pretrained(tiny_bloom_dir, dtype=torch.float32)


@pytest.mark.parametrize("bf16", [False, True])
def test_a_tied_bloom_gets_the_same_gradients_in_one_reused_buffer(tiny_bloom, bf16):
    """Against the same model with autograd's own gradient (sparse lookup, fused GELU, recast linears)."""
    expected_model = copy.deepcopy(tiny_bloom)
    fuse_activations(expected_model)
    sparse_tied_embedding_gradient(expected_model)
    fuse_for_training(tiny_bloom, single_process=True)
    assert isinstance(tiny_bloom.lm_head, OutputLayer)
    if bf16:
        recast_linears(expected_model)
        recast_linears(tiny_bloom)
    vocab, weight = tiny_bloom.config.vocab_size, tiny_bloom.lm_head.weight

    places = set()
    for seed in (1, 2):  # two steps: the second writes into the first one's buffer
        assert_identical(
            gradients(tiny_bloom, [batch(vocab, seed)], bf16), gradients(expected_model, [batch(vocab, seed)], bf16)
        )
        places.add(weight.grad.data_ptr())
    assert len(places) == 1
    accumulated = [batch(vocab, 3), batch(vocab, 4)]
    assert_identical(gradients(tiny_bloom, accumulated, bf16), gradients(expected_model, accumulated, bf16))


def test_an_untied_llama_gets_the_same_gradients(tmp_path):
    model = AutoModelForCausalLM.from_pretrained(build_tiny_llama(file_texts(), tmp_path), dtype=torch.float32)
    assert model.lm_head.weight is not model.get_input_embeddings().weight
    expected_model = copy.deepcopy(model)
    assert keep_output_gradient(model)
    for seed in (1, 2):
        assert_identical(gradients(model, [batch(100, seed)]), gradients(expected_model, [batch(100, seed)]))


def test_what_it_keeps_is_dropped_after_training_and_nothing_else_changes(tiny_bloom):
    keys = set(tiny_bloom.state_dict())
    fuse_for_training(tiny_bloom, single_process=True)
    gradients(tiny_bloom, [batch(tiny_bloom.config.vocab_size, 1)])
    assert tiny_bloom.lm_head.gradient_buffer is not None
    assert set(tiny_bloom.state_dict()) == keys
    tiny_bloom.zero_grad(set_to_none=True)
    drop_output_gradient(tiny_bloom)
    assert tiny_bloom.lm_head.gradient_buffer is None
    with torch.no_grad():  # answering: a plain linear layer
        ids = batch(tiny_bloom.config.vocab_size, 1)["input_ids"]
        torch.testing.assert_close(tiny_bloom.lm_head(tiny_bloom.transformer(ids)[0]), tiny_bloom(ids).logits)


def test_only_a_trained_output_layer_in_a_single_process_keeps_a_buffer(tiny_bloom):
    several = copy.deepcopy(tiny_bloom)
    fuse_for_training(several, single_process=False)
    assert type(several.lm_head) is torch.nn.Linear
    tiny_bloom.lm_head.weight.requires_grad_(False)
    assert not keep_output_gradient(tiny_bloom)
