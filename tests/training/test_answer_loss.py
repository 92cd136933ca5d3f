"""Logits at answer positions only: the same loss and the same gradients as the model's own loss."""

import pytest
import torch
from transformers import AutoModelForCausalLM

from llm_instruct.data.instructions import Example
from llm_instruct.data.prompt import PromptStyle
from llm_instruct.data.tokens import CompletionOnlyCollator, accepts_position_mask, encode_examples
from llm_instruct.models.lora import LoraSettings, add_lora
from llm_instruct.training.answer_loss import answer_loss

EXAMPLES = [
    Example("Nenne ein Tier.", "Ein Pferd ist ein Tier.", 1),
    Example("Sage mir einen Zauberspruch zu drei Städten.", "Hokus Düsseldorf, Esoterikus Köln, Alohomora!", 2),
    Example("Zähle bis drei.", "Eins, zwei, drei.", 3),
]


@pytest.fixture
def model_and_batch(tiny_bloom_dir, bpe_tokenizer):
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_pretrained(tiny_bloom_dir, dtype=torch.float32)
    features = encode_examples(bpe_tokenizer, PromptStyle(), EXAMPLES, 512, "f").features
    batch = CompletionOnlyCollator(bpe_tokenizer.pad_token_id, mark_predicted_positions=True)(features)
    return model, batch


def test_the_mask_marks_the_positions_before_each_label(model_and_batch):
    _, batch = model_and_batch
    keep, labels = batch["logits_to_keep"], batch["labels"]
    assert keep.dtype == torch.bool and keep.shape == labels.shape
    assert keep[:, :-1].tolist() == (labels[:, 1:] != -100).tolist()
    assert not keep[:, -1].any()


def test_same_loss_and_gradients_as_the_models_own_loss(model_and_batch):
    model, batch = model_and_batch
    full = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], labels=batch["labels"])
    full.loss.backward()
    full_grads = [p.grad.clone() for p in model.parameters()]
    model.zero_grad()

    kept = model(
        input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], logits_to_keep=batch["logits_to_keep"]
    )
    assert kept.logits.shape == (int(batch["logits_to_keep"].sum()), model.config.vocab_size)
    loss = answer_loss(kept, batch["labels"])
    loss.backward()
    assert loss.item() == pytest.approx(full.loss.item(), rel=1e-6)
    for expected, parameter in zip(full_grads, model.parameters(), strict=True):
        torch.testing.assert_close(parameter.grad, expected, rtol=1e-5, atol=1e-7)


def test_accumulated_batches_are_weighed_by_their_answer_tokens(model_and_batch):
    model, batch = model_and_batch
    kept = model(
        input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], logits_to_keep=batch["logits_to_keep"]
    )
    tokens = int((batch["labels"] != -100).sum())
    assert answer_loss(kept, batch["labels"], num_items_in_batch=2 * tokens).item() == pytest.approx(
        answer_loss(kept, batch["labels"]).item() / 2
    )


def test_lora_models_are_asked_through_their_base(tiny_bloom_dir):
    model = AutoModelForCausalLM.from_pretrained(tiny_bloom_dir, dtype=torch.float32)
    assert accepts_position_mask(model)
    assert accepts_position_mask(add_lora(model, LoraSettings(4, 8, 0.0), str(tiny_bloom_dir)))


def test_the_trainer_runs_the_output_layer_on_answer_positions(model_and_batch, bpe_tokenizer, tmp_path):
    from transformers import TrainingArguments

    from llm_instruct.training.trainer import build_trainer

    model, _ = model_and_batch
    encoded = encode_examples(bpe_tokenizer, PromptStyle(), EXAMPLES, 512, "f")
    args = TrainingArguments(output_dir=str(tmp_path), use_cpu=True, report_to="none", remove_unused_columns=False)
    trainer = build_trainer(model, bpe_tokenizer, args, encoded, None, group_by_length=True)
    assert trainer.compute_loss_func is answer_loss
    assert "logits_to_keep" in trainer.data_collator(encoded.features)
    plain = build_trainer(model, bpe_tokenizer, args, encoded, None, group_by_length=True, answer_logits_only=False)
    assert plain.compute_loss_func is None and "logits_to_keep" not in plain.data_collator(encoded.features)
