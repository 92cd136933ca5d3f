"""instruct_ger.py end to end on a tiny BLOOM built in the test and loaded like a hub model."""

import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from conftest import ROOT, TRAINING_FILE
from safetensors.torch import load_file
from transformers import AutoModelForCausalLM, AutoTokenizer, TrainerCallback

from llm_instruct.cli import EXIT_INTERRUPTED, run_cli
from llm_instruct.data.prompt import PromptStyle, load_style
from llm_instruct.training.train import build_parser, main, run

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

    assert load_style(model_dir) == PromptStyle()
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir)
    assert model.dtype == torch.float32
    assert model.generation_config.eos_token_id == tokenizer.eos_token_id
    assert model.config.use_cache  # the Trainer turns it off for training


class InterruptAfterFirstCheckpoint(TrainerCallback):
    """A crash (here a KeyboardInterrupt raised from inside) right after the first epoch's checkpoint."""

    def on_save(self, args, state, control, **kwargs):
        raise KeyboardInterrupt


class CtrlCAtStep(TrainerCallback):
    """The user presses Ctrl-C while the given step runs (a real SIGINT to this process)."""

    def __init__(self, step: int):
        self.step = step

    def on_step_begin(self, args, state, control, **kwargs):
        if state.global_step + 1 == self.step:
            os.kill(os.getpid(), signal.SIGINT)


# 14 lines in batches of 4: 4 steps an epoch, 12 in all.
RESUMABLE = ("--epochs", "3", "--batch-size", "4", "--checkpoint-minutes", "0")


@pytest.fixture(scope="module")
def straight_run(tmp_path_factory, tiny_bloom_dir):
    workdir = tmp_path_factory.mktemp("straight")
    training_file = workdir / "instructions.txt"
    training_file.write_text(TRAINING_FILE, encoding="utf-8")
    return run(build_parser().parse_args(train_args(training_file, tiny_bloom_dir, workdir, *RESUMABLE)))


def same_end(resumed: Path, straight: Path) -> None:
    reports = [json.loads((d / "training_report.json").read_text()) for d in (straight, resumed)]
    assert reports[0]["global_step"] == reports[1]["global_step"] == 12
    # The same steps with the same weights give the same losses, whichever session ran them.
    assert [e["epoch"] for e in reports[1]["epochs"]] == [1, 2, 3]
    for straight_epoch, resumed_epoch in zip(reports[0]["epochs"], reports[1]["epochs"], strict=True):
        assert set(resumed_epoch) == {"epoch", "loss", "eval_loss"}
        assert resumed_epoch["loss"] == pytest.approx(straight_epoch["loss"], rel=1e-4)
        assert resumed_epoch["eval_loss"] == pytest.approx(straight_epoch["eval_loss"], rel=1e-4)
    assert MODEL_FILES <= {path.name for path in resumed.iterdir()}
    weights = [load_file(d / "model.safetensors") for d in (straight, resumed)]
    assert all(torch.allclose(weights[0][name], weights[1][name], atol=1e-5) for name in weights[0])


def test_resume_after_a_crash_skips_a_partial_checkpoint_and_ends_where_an_uninterrupted_run_ends(
    training_file, tiny_bloom_dir, tmp_path, straight_run, capsys
):
    args = train_args(training_file, tiny_bloom_dir, tmp_path, *RESUMABLE)
    with pytest.raises(KeyboardInterrupt):
        run(build_parser().parse_args(args), callbacks=[InterruptAfterFirstCheckpoint()])
    assert not (tmp_path / "model").exists()  # nothing half-written where the model belongs
    checkpoints = tmp_path / "checkpoints-model"
    assert [p.name for p in checkpoints.iterdir()] == ["checkpoint-4"]
    # A later checkpoint cut off while being written: weights and config, no trainer_state.json.
    partial = checkpoints / "checkpoint-8"
    partial.mkdir()
    for name in ("model.safetensors", "config.json"):
        shutil.copy(checkpoints / "checkpoint-4" / name, partial / name)
    capsys.readouterr()

    resumed = run(build_parser().parse_args([*args, "--resume"]))

    captured = capsys.readouterr()
    assert (
        f"Notice: removing {partial}: its trainer_state.json is missing or unreadable, so writing it was cut off."
        in captured.err
    )
    assert f"Resuming from step 4 ({checkpoints / 'checkpoint-4'}, epoch 1 of 3)" in captured.out
    same_end(resumed, straight_run)


def test_ctrl_c_writes_a_checkpoint_at_the_step_and_resume_ends_the_same(
    training_file, tiny_bloom_dir, tmp_path, straight_run, capsys
):
    args = train_args(training_file, tiny_bloom_dir, tmp_path, *RESUMABLE)

    def interrupted_main(argv):
        return run(build_parser().parse_args(argv), callbacks=[CtrlCAtStep(6)], argv=argv)

    assert run_cli(interrupted_main, args) == EXIT_INTERRUPTED
    checkpoint = tmp_path / "checkpoints-model" / "checkpoint-6"  # in the middle of the second epoch
    err = capsys.readouterr().err
    assert err.strip().splitlines()[-1] == (
        f"Interrupted at step 6 of 12; checkpoint written to {checkpoint}. "
        f"Continue with: {shlex.join(['python', 'instruct_ger.py', *args, '--resume'])}"
    )
    assert not (tmp_path / "model").exists()

    history = json.loads((checkpoint / "trainer_state.json").read_text())["log_history"]
    trained_before = [entry for entry in history if "training_seconds" in entry][-1]
    assert trained_before["step"] == 6
    assert [entry["step"] for entry in history if "loss" in entry] == [4, 6]  # the half epoch's loss is kept

    resumed = run(build_parser().parse_args([*args, "--resume"]))
    assert f"Resuming from step 6 ({checkpoint}, epoch 1.5 of 3)" in capsys.readouterr().out
    same_end(resumed, straight_run)
    report = json.loads((resumed / "training_report.json").read_text())
    assert report["seconds"]["training"] > trained_before["training_seconds"]  # both sessions count


def test_ctrl_c_in_the_last_step_of_an_epoch_keeps_its_loss_and_evaluation(
    training_file, tiny_bloom_dir, tmp_path, straight_run, capsys
):
    args = train_args(training_file, tiny_bloom_dir, tmp_path, *RESUMABLE)
    assert run_cli(lambda argv: run(build_parser().parse_args(argv), callbacks=[CtrlCAtStep(8)], argv=argv), args) == (
        EXIT_INTERRUPTED
    )
    checkpoint = tmp_path / "checkpoints-model" / "checkpoint-8"
    history = json.loads((checkpoint / "trainer_state.json").read_text())["log_history"]
    assert [(entry["step"], sorted(entry)) for entry in history if "loss" in entry or "eval_loss" in entry][-2:] == [
        (8, ["epoch", "grad_norm", "learning_rate", "loss", "step"]),
        (8, ["epoch", "eval_loss", "eval_runtime", "eval_samples_per_second", "eval_steps_per_second", "step"]),
    ]
    capsys.readouterr()
    same_end(run(build_parser().parse_args([*args, "--resume"])), straight_run)


def test_ctrl_c_in_the_last_step_saves_the_model_and_skips_only_the_evaluation(
    training_file, tiny_bloom_dir, tmp_path, capsys
):
    args = train_args(training_file, tiny_bloom_dir, tmp_path, *RESUMABLE)
    assert run_cli(lambda argv: run(build_parser().parse_args(argv), callbacks=[CtrlCAtStep(12)], argv=argv), args) == (
        EXIT_INTERRUPTED
    )
    model_dir = tmp_path / "model"
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        f"Interrupted after training; the model is saved in {model_dir}, its evaluation skipped. "
        f"Score it with: python generate.py --model-name {model_dir} --eval {training_file}"
    )
    assert MODEL_FILES <= {path.name for path in model_dir.iterdir()}
    assert not (tmp_path / "checkpoints-model").exists()  # no needless checkpoint after the last step
    report = json.loads((model_dir / "training_report.json").read_text())
    assert report["global_step"] == 12 and report["evaluation"] is None


def test_a_short_run_writes_no_checkpoint(training_file, tiny_bloom_dir, tmp_path, capsys):
    """Default interval: a run shorter than 10 minutes writes its model directory and nothing else."""
    run(build_parser().parse_args(train_args(training_file, tiny_bloom_dir, tmp_path, "--epochs", "3")))
    assert "Checkpoint:" not in capsys.readouterr().err
    assert sorted(path.name for path in tmp_path.iterdir()) == ["instructions.txt", "model"]


def test_a_left_checkpoint_is_not_overwritten_without_a_word(training_file, tiny_bloom_dir, tmp_path, capsys):
    checkpoint = tmp_path / "checkpoints-model" / "checkpoint-4"
    checkpoint.mkdir(parents=True)
    (checkpoint / "trainer_state.json").write_text('{"global_step": 4}')
    assert run_cli(main, train_args(training_file, tiny_bloom_dir, tmp_path)) == 2
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        f"error: {checkpoint} is left from an unfinished run: pass --resume to continue it, "
        f"or delete {tmp_path / 'checkpoints-model'} to start over"
    )


def test_resume_without_a_checkpoint_is_a_user_error(training_file, tiny_bloom_dir, tmp_path, capsys):
    code = run_cli(main, train_args(training_file, tiny_bloom_dir, tmp_path, "--resume"))
    assert code == 2
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        f"error: --resume: no complete checkpoint in {tmp_path / 'checkpoints-model'}; run once without --resume"
    )


def test_interrupt_exits_130():
    def interrupted(argv):
        raise KeyboardInterrupt

    assert run_cli(interrupted, []) == EXIT_INTERRUPTED


def test_bad_file_one_line_exit_2_nothing_written(tmp_path):
    """Checked through the real script: exit status, stderr and no traceback; nothing is loaded or written."""
    bad = tmp_path / "bad.txt"
    bad.write_text("Frage?#Antwort.\nKaputte Zeile\n", encoding="utf-8")
    result = subprocess.run(
        [sys.executable, str(ROOT / "instruct_ger.py"), "--input-file", str(bad), "--output-dir", str(tmp_path / "out")],
        capture_output=True, text=True, cwd=tmp_path, check=False,
    )  # fmt: skip
    assert result.returncode == 2
    assert result.stderr == f"error: {bad}:2: expected 'instruction#answer', found no '#'\n"
    assert result.stdout == ""
    assert not (tmp_path / "out").exists()


def test_a_marker_without_training_lines_is_reported_before_anything_loads(tmp_path, capsys):
    bad = tmp_path / "bad.txt"
    bad.write_text("# _EVAL_\nFrage?#Antwort.\n", encoding="utf-8")
    assert run_cli(main, ["--input-file", str(bad), "--output-dir", str(tmp_path / "out")]) == 2
    assert capsys.readouterr().err == f"error: {bad}:1: no training lines before the _EVAL_ marker\n"
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
