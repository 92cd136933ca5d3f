"""LoRA and distributed training on a tiny BLOOM."""

import json
import os
import shutil

import pytest
import torch
from safetensors.torch import load_file
from transformers import AutoModelForCausalLM, TrainerCallback

from llm_instruct.answering.answer import main as generate_main
from llm_instruct.cli import UserError, run_cli
from llm_instruct.models.lora import target_modules
from llm_instruct.models.modeldir import find_model, load_tokenizer_and_model
from llm_instruct.training.train import build_parser, run


def lora_args(training_file, base_dir, output_dir, *extra):
    return build_parser().parse_args(
        [
            "--input-file", str(training_file),
            "--model-name", str(base_dir),
            "--output-dir", str(output_dir),
            "--output-model", "lora",
            "--epochs", "2",
            "--learning-rate", "1e-2",
            "--lora",
            "--lora-dropout", "0",
            *extra,
        ]
    )  # fmt: skip


def test_lora_is_merged_into_plain_weights_or_saved_alone(training_file, tiny_bloom_dir, tmp_path):
    merged_dir = run(lora_args(training_file, tiny_bloom_dir, tmp_path / "merged"))
    assert not (merged_dir / "adapter_config.json").exists()
    AutoModelForCausalLM.from_pretrained(merged_dir)  # plain transformers, no peft involved
    base, merged = load_file(tiny_bloom_dir / "model.safetensors"), load_file(merged_dir / "model.safetensors")
    assert base.keys() == merged.keys()
    changed = {name for name in base if not (base[name] == merged[name]).all()}
    # Only BLOOM's LoRA target, the fused attention projection, carries the training.
    assert changed == {f"transformer.h.{layer}.self_attention.query_key_value.weight" for layer in range(2)}

    adapter_dir = run(lora_args(training_file, tiny_bloom_dir, tmp_path / "adapter", "--save-adapter"))
    assert {"adapter_config.json", "adapter_model.safetensors", "prompt_template.json"} <= set(os.listdir(adapter_dir))
    assert not (adapter_dir / "model.safetensors").exists()
    # The same training, so base plus adapter as generate.py loads it is the merged model.
    _, from_adapter = load_tokenizer_and_model(find_model(str(adapter_dir)), dtype=torch.float32)
    adapter_weights = from_adapter.state_dict()
    for name, weight in merged.items():
        assert torch.allclose(adapter_weights[name], weight, atol=1e-6), name

    assert run_cli(generate_main, ["--model-name", str(adapter_dir), "--jsonl", "--max-new-tokens", "4", "Hallo!"]) == 0


def test_lora_targets_per_architecture():
    assert target_modules("bloom", ()) == ["query_key_value"]
    assert target_modules("llama", ()) == ["q_proj", "v_proj"]
    assert target_modules("bloom", ("dense",)) == ["dense"]
    with pytest.raises(UserError, match="no default LoRA target modules for model type 'mystery'"):
        target_modules("mystery", ())


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--save-adapter"], "--save-adapter and --lora-target-modules go with --lora"),
        (["--model-name", "tiny-bloom", "--lora", "--save-adapter"], "--save-adapter needs a base model that outlives"),
    ],
)
def test_lora_flag_conflicts(training_file, tmp_path, argv, message):
    with pytest.raises(UserError, match=message):
        run(build_parser().parse_args(["--input-file", str(training_file), "--output-dir", str(tmp_path), *argv]))


class ForwardRecorder(TrainerCallback):
    """Records every training-mode run of the first block's attention projection: its output dtype.

    A layer inside the block, not the block: checkpointing recomputes the block's forward
    without the block's own hooks, and stops recomputing after the last tensor it needs, so
    the first projection runs again where the block's last layer does not.
    """

    def __init__(self):
        self.output_dtypes = []

    def on_train_begin(self, args, state, control, model=None, **kwargs):
        block = next(
            module for name, module in model.named_modules() if name.endswith("h.0.self_attention.query_key_value")
        )

        def record(module, inputs, output):
            if module.training and torch.is_grad_enabled():
                hidden = output[0] if isinstance(output, tuple) else output
                self.output_dtypes.append(hidden.dtype)

        block.register_forward_hook(record)


@pytest.mark.parametrize(("flag", "runs_per_batch"), [(None, 2), ("--no-gradient-checkpointing", 1)])
def test_accumulation_and_checkpointing_take_fewer_optimizer_steps(
    training_file, tiny_bloom_dir, tmp_path, flag, runs_per_batch
):
    # 14 lines in batches of 4 make 4 batches an epoch; summing 2 per step leaves 2 steps an epoch.
    extra = ("--batch-size", "4", "--gradient-accumulation-steps", "2", *([flag] if flag else []))
    recorder = ForwardRecorder()
    model_dir = run(lora_args(training_file, tiny_bloom_dir, tmp_path, *extra), callbacks=[recorder])
    report = json.loads((model_dir / "training_report.json").read_text())
    assert report["global_step"] == 2 * 2
    # Checkpointing (the default) recomputes each block's forward in the backward pass: 2 runs for each of 8 batches.
    assert len(recorder.output_dtypes) == runs_per_batch * 8


def test_bf16_mixed_precision_computes_in_bf16_and_keeps_float32_weights(training_file, tiny_bloom_dir, tmp_path):
    argv = ["--input-file", str(training_file), "--model-name", str(tiny_bloom_dir), "--output-dir", str(tmp_path)]
    recorder = ForwardRecorder()
    model_dir = run(
        build_parser().parse_args([*argv, "--output-model", "bf16", "--epochs", "1", "--bf16"]), callbacks=[recorder]
    )
    assert recorder.output_dtypes and set(recorder.output_dtypes) == {torch.bfloat16}  # autocast was on
    weights = load_file(model_dir / "model.safetensors")
    assert {weight.dtype for weight in weights.values()} == {torch.float32}


def test_an_adapter_trained_on_a_relative_base_loads_from_anywhere(
    training_file, tiny_bloom_dir, tmp_path, monkeypatch
):
    workdir, elsewhere = tmp_path / "work", tmp_path / "elsewhere"
    elsewhere.mkdir()
    shutil.copytree(tiny_bloom_dir, workdir / "base")
    monkeypatch.chdir(workdir)
    adapter_dir = run(lora_args(training_file, "base", "out", "--save-adapter"))
    config = json.loads((adapter_dir / "adapter_config.json").read_text())
    assert config["base_model_name_or_path"] == str(workdir / "base")
    assert (adapter_dir / "generation_config.json").is_file()  # generation settings travel with the adapter

    monkeypatch.chdir(elsewhere)
    assert run_cli(generate_main, ["--model-name", str(workdir / adapter_dir), "--max-new-tokens", "2", "Hallo!"]) == 0

    shutil.rmtree(workdir / "base")
    with pytest.raises(UserError) as raised:
        load_tokenizer_and_model(find_model(str(workdir / adapter_dir)), dtype=torch.float32)
    assert str(raised.value) == (
        f"{workdir / adapter_dir} is a LoRA adapter for the base model in {workdir / 'base'}, which does not exist "
        f"(moved or deleted?); put the base model back there or load a merged model"
    )
