"""instruct_ger.py end to end on a tiny BLOOM built in the test and loaded like a hub model."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from transformers import AutoModelForCausalLM, AutoTokenizer, TrainerCallback

from llm_instruct.cli import EXIT_INTERRUPTED, run_cli
from llm_instruct.prompt import DEFAULT_TEMPLATE, load_template
from llm_instruct.train import build_parser, main, run

ROOT = Path(__file__).resolve().parent.parent
MODEL_FILES = {"config.json", "model.safetensors", "tokenizer.json", "prompt_template.json", "training_report.json"}


def train_args(training_file, base_dir, output_dir, *extra):
    return [
        "--input-file", str(training_file),
        "--model-name", str(base_dir),
        "--output-dir", str(output_dir),
        "--output-model", "model",
        "--learning-rate", "1e-3",
        "--seed", "7",
        *extra,
    ]  # fmt: skip


def test_training_lowers_the_loss_and_writes_a_loadable_model(training_file, tiny_bloom_dir, tmp_path, capsys):
    model_dir = run(build_parser().parse_args(train_args(training_file, tiny_bloom_dir, tmp_path, "--epochs", "4")))

    out = capsys.readouterr().out
    assert "First training sentence: Es folgt eine Anweisung" in out
    assert "#train: 14\n#eval: 2\n" in out
    assert f"Model: {tiny_bloom_dir}\nStart training ..." in out
    assert f"Training finished. Wrote model to {model_dir}" in out

    assert MODEL_FILES <= {path.name for path in model_dir.iterdir()}
    assert not (tmp_path / "checkpoints-model").exists()  # superseded by the finished model
    report = json.loads((model_dir / "training_report.json").read_text())
    losses = [epoch["loss"] for epoch in report["epochs"]]
    assert len(losses) == 4 and losses[-1] < losses[0]
    assert all("eval_loss" in epoch for epoch in report["epochs"])
    assert report["global_step"] == 4 * 2  # 14 lines, batch size 8
    assert report["evaluation"]["total"] == 2

    assert load_template(model_dir) == DEFAULT_TEMPLATE
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir)
    assert model.dtype == torch.float32
    assert model.generation_config.eos_token_id == tokenizer.eos_token_id
    assert model.config.use_cache  # the Trainer turns it off for training


class InterruptAfterFirstCheckpoint(TrainerCallback):
    """Ctrl-C right after the first epoch's checkpoint is on disk."""

    def on_save(self, args, state, control, **kwargs):
        raise KeyboardInterrupt


def test_resume_after_interruption_ends_where_an_uninterrupted_run_ends(training_file, tiny_bloom_dir, tmp_path):
    epochs = ("--epochs", "3")
    straight = run(build_parser().parse_args(train_args(training_file, tiny_bloom_dir, tmp_path / "a", *epochs)))

    interrupted_args = build_parser().parse_args(train_args(training_file, tiny_bloom_dir, tmp_path / "b", *epochs))
    with pytest.raises(KeyboardInterrupt):
        run(interrupted_args, callbacks=[InterruptAfterFirstCheckpoint()])
    assert not (tmp_path / "b" / "model").exists()  # nothing half-written where the model belongs
    assert [p.name for p in (tmp_path / "b" / "checkpoints-model").iterdir()] == ["checkpoint-2"]

    resumed = run(
        build_parser().parse_args(train_args(training_file, tiny_bloom_dir, tmp_path / "b", *epochs, "--resume"))
    )

    reports = [json.loads((d / "training_report.json").read_text()) for d in (straight, resumed)]
    assert reports[0]["global_step"] == reports[1]["global_step"] == 6
    assert [e["epoch"] for e in reports[1]["epochs"]] == [1, 2, 3]
    assert MODEL_FILES <= {path.name for path in resumed.iterdir()}
    weights = [load_file(d / "model.safetensors") for d in (straight, resumed)]
    assert all(torch.allclose(weights[0][name], weights[1][name], atol=1e-5) for name in weights[0])


def test_resume_without_a_checkpoint_is_a_user_error(training_file, tiny_bloom_dir, tmp_path, capsys):
    code = run_cli(main, train_args(training_file, tiny_bloom_dir, tmp_path, "--resume"))
    assert code == 2
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        f"error: --resume: no checkpoint in {tmp_path / 'checkpoints-model'}; run once without --resume"
    )


def test_interrupt_exits_130():
    def interrupted(argv):
        raise KeyboardInterrupt

    assert run_cli(interrupted, []) == EXIT_INTERRUPTED


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("Frage?#Antwort.\nKaputte Zeile\n", "{file}:2: expected 'instruction#answer', found no '#'"),
        ("# _EVAL_\nFrage?#Antwort.\n", "{file}:1: no training lines before the _EVAL_ marker"),
    ],
)
def test_bad_file_one_line_exit_2_nothing_written(tmp_path, content, message):
    """Checked through the real script: exit status, stderr and no traceback; nothing is loaded or written."""
    bad = tmp_path / "bad.txt"
    bad.write_text(content, encoding="utf-8")
    result = subprocess.run(
        [
            sys.executable,
            str(ROOT / "instruct_ger.py"),
            "--input-file",
            str(bad),
            "--output-dir",
            str(tmp_path / "out"),
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        check=False,
    )
    assert result.returncode == 2
    assert result.stderr == f"error: {message.format(file=bad)}\n"
    assert result.stdout == ""
    assert not (tmp_path / "out").exists()


def test_unknown_model_name_is_one_clear_line(training_file, tmp_path, capsys):
    code = run_cli(
        main,
        ["--input-file", str(training_file), "--model-name", "nobody/no-such-model", "--output-dir", str(tmp_path)],
    )
    assert code == 2
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert error.startswith("error: cannot load model 'nobody/no-such-model': no such local directory")
    assert "Pass a local model directory with --model-name" in error
