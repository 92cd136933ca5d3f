"""Nothing lost: a run never replaces what it did not make or reads from, and a finished run is
safe before anything else happens, whatever Ctrl-C or an error does afterwards."""

import json
import os
import signal

import pytest
from conftest import TRAINING_FILE

from llm_instruct.cli import EXIT_INTERRUPTED, run_cli
from llm_instruct.training.train import build_parser, main, run

MODEL_FILES = {"config.json", "model.safetensors", "tokenizer.json", "prompt_template.json", "training_report.json"}


def argv(training_file, base, output_dir, *extra, name="model"):
    return [
        "--input-file", str(training_file), "--model-name", str(base), "--output-dir", str(output_dir),
        "--output-model", name, "--epochs", "2", "--learning-rate", "1e-3", *extra,
    ]  # fmt: skip


@pytest.mark.parametrize("name", [".", "..", "", "sub/model"])
def test_output_names_that_are_no_plain_folder_are_refused_and_nothing_is_touched(
    training_file, tiny_bloom_dir, tmp_path, capsys, name
):
    other = tmp_path / "out" / "other_model"
    other.mkdir(parents=True)
    (other / "prompt_template.json").write_text("{}")
    assert run_cli(main, argv(training_file, tiny_bloom_dir, tmp_path / "out", name=name)) == 2
    assert capsys.readouterr().err == (
        f"error: --output-model {name!r}: give a plain folder name (not empty, '.' or '..', and without '/'); "
        f"it is created inside --output-dir\n"
    )
    assert [path.name for path in (tmp_path / "out").iterdir()] == ["other_model"]
    assert [path.name for path in other.iterdir()] == ["prompt_template.json"]


@pytest.fixture
def base_copy(tiny_bloom_dir, tmp_path):
    """A base model directory of the test's own, whose files must survive."""
    base = tmp_path / "models" / "base"
    base.mkdir(parents=True)
    for path in tiny_bloom_dir.iterdir():
        (base / path.name).write_bytes(path.read_bytes())
    return base


@pytest.mark.parametrize(
    ("output_dir", "name", "written"),
    [
        ("models", "base", "the model directory {m}/base would be"),
        ("models/base", "adapter", "the model directory {m}/base/adapter would lie inside"),
        (".", "models", "the model directory {m} would hold"),
        ("models/base/deeper", "x", "the model directory {m}/base/deeper/x would lie inside"),
    ],
)
def test_a_run_never_writes_where_the_base_model_is(
    training_file, base_copy, tmp_path, capsys, output_dir, name, written
):
    before = {path.name: path.read_bytes() for path in base_copy.iterdir()}
    args = argv(training_file, base_copy, tmp_path / output_dir, "--lora", "--save-adapter", name=name)
    assert run_cli(main, args) == 2
    where = written.format(m=tmp_path / "models")
    assert capsys.readouterr().err == (
        f"error: {where} the base model's directory {base_copy}, which the run reads from; "
        f"choose another --output-dir or --output-model\n"
    )
    assert {path.name: path.read_bytes() for path in base_copy.iterdir()} == before


def test_a_run_never_replaces_a_folder_that_holds_its_input_file(tiny_bloom_dir, tmp_path, capsys):
    data = tmp_path / "out" / "model" / "data.txt"
    data.parent.mkdir(parents=True)
    data.write_text(TRAINING_FILE, encoding="utf-8")
    assert run_cli(main, argv(data, tiny_bloom_dir, tmp_path / "out")) == 2
    assert capsys.readouterr().err == (
        f"error: the model directory {tmp_path / 'out' / 'model'} would hold the input file {data}, which the run "
        f"reads from; choose another --output-dir or --output-model\n"
    )
    assert data.read_text(encoding="utf-8") == TRAINING_FILE


def test_a_folder_that_is_no_model_directory_is_never_replaced(training_file, tiny_bloom_dir, tmp_path, capsys):
    mine = tmp_path / "model"
    mine.mkdir()
    (mine / "notes.txt").write_text("mine")
    assert run_cli(main, argv(training_file, tiny_bloom_dir, tmp_path)) == 2
    assert capsys.readouterr().err == (
        f"error: {mine} exists and is not a model directory written by instruct_ger.py, so it is not replaced; "
        f"choose another --output-model or move it away\n"
    )
    assert [path.name for path in mine.iterdir()] == ["notes.txt"]


def ctrl_c_at(calls: int, function):
    """function, wrapped to receive a real Ctrl-C (SIGINT) at its calls-th call."""
    count = 0

    def wrapped(*args, **kwargs):
        nonlocal count
        count += 1
        if count == calls:
            os.kill(os.getpid(), signal.SIGINT)
        return function(*args, **kwargs)

    return wrapped


def test_ctrl_c_during_the_evaluation_keeps_the_model_and_what_was_scored(
    training_file, tiny_bloom_dir, tmp_path, monkeypatch, capsys
):
    from llm_instruct.answering import evaluation

    monkeypatch.setattr(evaluation, "answer_examples", ctrl_c_at(2, evaluation.answer_examples))
    monkeypatch.setattr("llm_instruct.training.scoring.ANSWER_BATCH_SIZE", 1)
    assert run_cli(main, argv(training_file, tiny_bloom_dir, tmp_path)) == EXIT_INTERRUPTED
    model_dir = tmp_path / "model"
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1] == (
        f"Interrupted during the evaluation after 1 of 2 answers. The model is saved in {model_dir}; "
        f"score it with: python generate.py --model-name {model_dir} --eval {training_file}"
    )
    assert MODEL_FILES <= {path.name for path in model_dir.iterdir()}
    report = json.loads((model_dir / "training_report.json").read_text())
    assert (report["evaluation"]["total"], report["evaluation"]["complete"]) == (1, False)


def test_ctrl_c_while_the_model_is_written_waits_for_it(training_file, tiny_bloom_dir, tmp_path, monkeypatch, capsys):
    from llm_instruct.training import publish

    monkeypatch.setattr(publish, "save_style", ctrl_c_at(1, publish.save_style))
    assert run_cli(main, argv(training_file, tiny_bloom_dir, tmp_path)) == EXIT_INTERRUPTED
    model_dir = tmp_path / "model"
    err = capsys.readouterr().err
    assert "Finishing writing the model (press Ctrl-C again to abandon it) ..." in err
    assert err.strip().splitlines()[-1].startswith(f"Interrupted after training; the model is saved in {model_dir}")
    assert MODEL_FILES <= {path.name for path in model_dir.iterdir()}


def test_without_an_evaluation_split_evaluation_is_bounded_and_says_so(tiny_bloom_dir, tmp_path, monkeypatch, capsys):
    data = tmp_path / "data.txt"
    data.write_text(TRAINING_FILE.replace("# _EVAL_\n", ""), encoding="utf-8")
    monkeypatch.setattr("llm_instruct.training.scoring.EVALUATION_SHARE", 0.0)  # time for one batch only
    model_dir = run(build_parser().parse_args(argv(data, tiny_bloom_dir, tmp_path)))
    out = capsys.readouterr().out
    assert "Evaluation: no evaluation split, so training examples drawn at random are answered for " in out
    assert "(8 of 16 training examples, drawn at random)" in out
    report = json.loads((model_dir / "training_report.json").read_text())
    assert report["evaluation"]["examples"] == "training examples drawn at random"
    assert (report["evaluation"]["total"], report["evaluation"]["available"]) == (8, 16)
    assert all("eval_loss" not in epoch for epoch in report["epochs"])  # no evaluation loss on training examples


@pytest.mark.parametrize("seed", ["-1", str(10**14)])
def test_seeds_out_of_range_are_refused_before_anything_runs(training_file, tmp_path, capsys, seed):
    with pytest.raises(SystemExit) as exited:
        build_parser().parse_args(["--seed", seed])
    assert exited.value.code == 2
    assert capsys.readouterr().err.endswith(f"argument --seed: invalid seed in [0, 4294967295] value: '{seed}'\n")
