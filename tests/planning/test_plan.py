"""--dry-run and the preflight: the plan before any weight loads, refusals that load nothing."""

import resource
import subprocess
import sys

import pytest
from conftest import ROOT
from transformers import BloomConfig

from llm_instruct.cli import run_cli
from llm_instruct.data.batching import epoch_batches, token_counts
from llm_instruct.planning.memory import GIB
from llm_instruct.planning.plan import run_token_counts
from llm_instruct.training.train import main


def args(training_file, base_dir, output_dir, *extra):
    return ["--input-file", str(training_file), "--model-name", str(base_dir), "--output-dir", str(output_dir), *extra]


@pytest.fixture
def no_weights_load(monkeypatch):
    def refuse(*_, **__):
        raise AssertionError("weights were loaded")

    monkeypatch.setattr("llm_instruct.training.fine_tune.load_model", refuse)


def test_dry_run_prints_the_plan_and_writes_nothing(training_file, tiny_bloom_dir, tmp_path, capsys, no_weights_load):
    output = tmp_path / "out"
    assert run_cli(main, args(training_file, tiny_bloom_dir, output, "--dry-run", "--epochs", "4")) == 0
    out = capsys.readouterr().out
    assert "#train: 14\n#eval: 2\n" in out
    assert "Examples: 14 for training, 2 for evaluation\n" in out
    assert "Optimizer steps: 8\n" in out  # 14 lines in batches of 8, 4 epochs
    assert "Evaluation: 2 answers after training, and the evaluation loss after each epoch\n" in out
    assert "Preflight: the run fits in memory and on disk\n" in out
    assert "trained (full fine-tuning, fp32, adamw_torch_fused)" in out
    assert " GiB available RAM\n" in out and " GiB free in " in out and "Training time: roughly " in out
    assert out.endswith("Dry run: no weights loaded, nothing written.\n")
    assert not output.exists()


def test_dry_run_of_the_tutorials_shape_loads_no_weights(bpe_tokenizer, training_file, tmp_path):
    """A 1.3-billion-parameter config without weight files: planned in seconds, in a fraction of its size."""
    base = tmp_path / "bloom-1b5-shape"
    BloomConfig(n_layer=24, hidden_size=2048, n_head=16, vocab_size=50304).save_pretrained(base)
    bpe_tokenizer.save_pretrained(base)
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    argv = args(training_file, base, tmp_path / "out", "--dry-run", "--optim", "adamw_torch", "--precision", "fp32")
    result = subprocess.run(
        [sys.executable, str(ROOT / "instruct_ger.py"), *argv], capture_output=True, text=True, check=False
    )
    peak_gib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024 / GIB
    assert result.returncode == 0, result.stderr
    assert "Parameters: 1,311,629,312 in total, 1,311,629,312 trained (full fine-tuning, fp32, adamw_torch)" in (
        result.stdout
    )
    assert "Disk: model directory about 4.9 GiB, one checkpoint about 14.7 GiB" in result.stdout
    assert max(peak_gib, before * 1024 / GIB) < 1.5  # the weights alone would be 4.9 GiB


def test_a_run_that_would_not_fit_is_refused_before_the_weights_load(
    training_file, tiny_bloom_dir, tmp_path, capsys, monkeypatch, no_weights_load
):
    monkeypatch.setattr("llm_instruct.planning.preflight.available_memory", lambda device: (0.5 * GIB, "available RAM"))
    assert run_cli(main, args(training_file, tiny_bloom_dir, tmp_path / "out")) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: this run needs about 0.7 GiB but only 0.5 GiB of available RAM is there; ")
    assert err.endswith("(--ignore-preflight tries anyway)\n") and len(err.splitlines()) == 1
    assert not (tmp_path / "out").exists()


def test_a_disk_too_small_is_refused(training_file, tiny_bloom_dir, tmp_path, capsys, monkeypatch, no_weights_load):
    monkeypatch.setattr("llm_instruct.planning.preflight.free_disk", lambda directory: 1000.0)
    assert run_cli(main, args(training_file, tiny_bloom_dir, tmp_path / "out")) == 2
    assert capsys.readouterr().err.startswith("error: the model directory and checkpoints need about 0.0 GiB but ")


def test_ignore_preflight_trains_anyway(training_file, tiny_bloom_dir, tmp_path, monkeypatch):
    monkeypatch.setattr("llm_instruct.planning.preflight.available_memory", lambda device: (0.5 * GIB, "available RAM"))
    argv = args(training_file, tiny_bloom_dir, tmp_path, "--epochs", "1", "--ignore-preflight")
    assert run_cli(main, argv) == 0
    assert (tmp_path / "instruct_ger_bsp_1_1b5_ep4" / "model.safetensors").is_file()


def test_the_dry_run_shows_the_verdict_a_real_run_would_meet(
    training_file, tiny_bloom_dir, tmp_path, capsys, monkeypatch, no_weights_load
):
    monkeypatch.setattr("llm_instruct.planning.preflight.available_memory", lambda device: (0.5 * GIB, "available RAM"))
    assert run_cli(main, args(training_file, tiny_bloom_dir, tmp_path / "out", "--dry-run")) == 0
    verdict = [line for line in capsys.readouterr().out.splitlines() if line.startswith("Preflight: ")]
    assert len(verdict) == 1
    assert verdict[0].startswith(
        "Preflight: the run would be refused: this run needs about 0.7 GiB but only 0.5 GiB of available RAM is there"
    )


def test_padding_is_counted_over_every_epochs_batches():
    lengths = [5, 40, 12, 33, 7, 21, 18, 9, 30]
    per_epoch = [token_counts(lengths, epoch_batches(lengths, 4, 3, epoch, False)) for epoch in range(3)]
    assert run_token_counts(lengths, 4, 3, 3, False) == (sum(r for r, _ in per_epoch), sum(p for _, p in per_epoch))
    assert len({padded for _, padded in per_epoch}) > 1  # epochs differ, so the first alone would mislead
