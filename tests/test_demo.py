"""The README's demo, as a user on a CPU with fast bfloat16 runs it: tiny-bloom on the example
file under --precision auto, trained in bf16, gives every training answer back exactly."""

import json

from conftest import ROOT

from llm_instruct.answering.answer import main as generate_main
from llm_instruct.cli import run_cli
from llm_instruct.planning.precision import MatmulTiming
from llm_instruct.training.train import build_parser, run


def test_the_demo_in_bf16_reproduces_every_training_answer(tmp_path, monkeypatch, capsys):
    # A CPU on which bf16 products of training size take two thirds of the fp32 time, as on an AMD EPYC.
    monkeypatch.setattr(
        "llm_instruct.planning.precision.time_matmuls", lambda shape, repeats=5: MatmulTiming(3e-3, 2e-3)
    )
    example = ROOT / "instruct_ger_bsp_1.txt"
    model_dir = run(build_parser().parse_args(["--model-name", "tiny-bloom", "--input-file", str(example),
                                               "--output-dir", str(tmp_path)]))  # fmt: skip
    assert json.loads((model_dir / "training_report.json").read_text())["precision"] == "bf16"
    assert "so this run trains with bf16 mixed precision" in capsys.readouterr().err

    argv = ["--model-name", str(model_dir), "--eval", str(example), "--eval-lines", "train", "--dtype", "float32"]
    assert run_cli(generate_main, argv) == 0
    assert capsys.readouterr().out.splitlines()[-1] == "Exact match: 59/59 = 100.0%, chrF: 100.0"

    # Training's own evaluation answered as generate.py does with the saved model: in bf16 on this
    # CPU, and not under the autocast that training wrapped the model's forward pass in.
    report = json.loads((model_dir / "training_report.json").read_text())
    argv = ["--model-name", str(model_dir), "--eval", str(example), "--jsonl", "--dtype", "bfloat16"]
    assert run_cli(generate_main, argv) == 0
    answers = [json.loads(line)["response"] for line in capsys.readouterr().out.splitlines()]
    assert answers == [row["answer"] for row in report["evaluation"]["answers"]]
