"""LoRA and distributed training on a tiny BLOOM."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from transformers import AutoModelForCausalLM

from llm_instruct.cli import UserError
from llm_instruct.lora import target_modules
from llm_instruct.modeldir import load_tokenizer_and_model
from llm_instruct.train import build_parser, run

ROOT = Path(__file__).resolve().parent.parent


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
    _, from_adapter = load_tokenizer_and_model(str(adapter_dir), dtype=torch.float32)
    adapter_weights = from_adapter.state_dict()
    for name, weight in merged.items():
        assert torch.allclose(adapter_weights[name], weight, atol=1e-6), name

    result = subprocess.run(
        [sys.executable, str(ROOT / "generate.py"), "--model-name", str(adapter_dir), "--jsonl", "Hallo!"],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )
    assert json.loads(result.stdout)["instruction"] == "Hallo!"


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


def test_accumulation_and_checkpointing_take_fewer_optimizer_steps(training_file, tiny_bloom_dir, tmp_path):
    # 14 lines in batches of 4 make 4 batches an epoch; summing 2 per step leaves 2 steps an epoch.
    extra = ("--batch-size", "4", "--gradient-accumulation-steps", "2", "--gradient-checkpointing")
    model_dir = run(lora_args(training_file, tiny_bloom_dir, tmp_path, *extra))
    report = json.loads((model_dir / "training_report.json").read_text())
    assert report["global_step"] == 2 * 2


def test_bf16_mixed_precision_keeps_float32_weights(training_file, tiny_bloom_dir, tmp_path):
    argv = ["--input-file", str(training_file), "--model-name", str(tiny_bloom_dir), "--output-dir", str(tmp_path)]
    model_dir = run(build_parser().parse_args([*argv, "--output-model", "bf16", "--epochs", "1", "--bf16"]))
    weights = load_file(model_dir / "model.safetensors")
    assert {weight.dtype for weight in weights.values()} == {torch.float32}
