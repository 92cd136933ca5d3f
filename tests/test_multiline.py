"""Alpaca-style JSONL with answers over several lines, end to end, for both tokenizer families.

BLOOM with a byte-level BPE (tiny-bloom) and a Llama with a SentencePiece-style tokenizer, whose
prompts start with BOS and whose newlines are byte-fallback tokens: each is trained by
instruct_ger.py on the file below and must give its answers back, newlines included, through
generate.py --eval and through --jsonl on stdin, and both ways must give the same answers.
"""

import io
import json
import sys

import pytest
from conftest import build_tiny_llama
from transformers import AutoTokenizer

from llm_instruct.answering.answer import main as generate_main
from llm_instruct.cli import run_cli
from llm_instruct.data.prompt import PromptStyle, load_style
from llm_instruct.models.tiny import build_tiny_bloom
from llm_instruct.training.train import build_parser, run

RECORDS = [
    {"instruction": "Nenne drei Flüsse als Liste.", "output": "- Elbe\n- Weser\n- Mosel"},
    {
        "instruction": "Schreibe einen Zweizeiler über den Mond.",
        "output": "Der Mond scheint hell,\ner wandert schnell.",
    },
    {"instruction": "Zähle bis drei, eine Zahl pro Zeile.", "output": "Eins\nZwei\nDrei"},
    {"instruction": "Übersetze ins Englische.", "input": "Das Haus ist rot.", "output": "The house is red."},
    {"instruction": "Übersetze ins Englische.", "input": "Der Hund schläft.", "output": "The dog sleeps."},
    {"instruction": "Buchstabiere Haus.", "output": "H\nA\nU\nS"},
    {"instruction": "Hallo!", "output": "Hallo, schön, dass Du da bist."},
    {"instruction": "Nenne ein Tier.", "output": "Ein Pferd ist ein Tier."},
    {
        "instruction": "Schreibe eine Python-Funktion, die zwei Zahlen addiert.",
        "output": "def add(a, b):\n    return a + b",
    },
    {"instruction": "Nenne zwei Farben als Liste.", "output": "- Rot\n- Blau"},
]
TRAINING = ("--epochs", "80", "--batch-size", "4", "--learning-rate", "3e-3", "--seed", "1")


@pytest.fixture(scope="module")
def data_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("jsonl") / "data.jsonl"
    path.write_text("".join(json.dumps(record, ensure_ascii=False) + "\n" for record in RECORDS), encoding="utf-8")
    return path


def record_texts() -> list[str]:
    style = PromptStyle()
    return [style.format(r["instruction"], r.get("input", "")) + r["output"] for r in RECORDS]


def tiny_llama(directory):
    """A randomly initialised Llama with a Llama-style tokenizer trained on the records, saved like a hub model."""
    return build_tiny_llama(record_texts(), directory)


def tiny_bloom(directory):
    """A small BLOOM with a byte-level BPE trained on the records, saved like a hub model."""
    return build_tiny_bloom(record_texts(), directory, seed=0, hidden_size=128, layers=2)


@pytest.fixture(scope="module", params=["bloom", "llama"])
def trained(request, data_file, tmp_path_factory):
    workdir = tmp_path_factory.mktemp(request.param)
    base = str((tiny_bloom if request.param == "bloom" else tiny_llama)(workdir / "base"))
    argv = ["--input-file", str(data_file), "--model-name", base, "--output-dir", str(workdir), "--output-model", "m"]
    # The file as its own evaluation file: training's evaluation answers every record, as --eval does.
    argv += ["--eval-file", str(data_file)]
    return run(build_parser().parse_args([*argv, *TRAINING]))


def generate(argv, monkeypatch, capsys, stdin=""):
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(stdin.encode())))
    capsys.readouterr()
    assert run_cli(generate_main, argv) == 0
    return capsys.readouterr()


def test_the_model_directory_records_multi_line_answers(trained):
    assert load_style(trained).multiline_answers


def test_llama_prompts_start_with_bos_bloom_prompts_do_not(trained):
    tokenizer = AutoTokenizer.from_pretrained(trained)
    model_type = json.loads((trained / "config.json").read_text())["model_type"]
    first = tokenizer(PromptStyle().format("Hallo!"))["input_ids"][0]
    assert (first == tokenizer.bos_token_id) == (model_type == "llama")


def test_answers_come_back_with_their_newlines_the_same_through_eval_and_jsonl(trained, data_file, monkeypatch, capsys):
    scored = generate(["--model-name", str(trained), "--eval", str(data_file), "--jsonl"], monkeypatch, capsys)
    scored_records = [json.loads(line) for line in scored.out.splitlines()]
    assert scored.err.splitlines()[-1].startswith("Exact match: ")

    asked = generate(
        ["--model-name", str(trained), "--jsonl", "--jsonl-input"], monkeypatch, capsys, data_file.read_text()
    )
    answers = [json.loads(line)["response"] for line in asked.out.splitlines()]

    assert answers == [record["response"] for record in scored_records]  # --eval gives generate.py's answers
    exact = [answer == record["output"] for answer, record in zip(answers, RECORDS, strict=True)]
    assert sum(exact) / len(exact) >= 0.9
    assert sum(exact[i] for i, r in enumerate(RECORDS) if "\n" in r["output"]) >= 5  # of 6 multi-line answers
    report = json.loads((trained / "training_report.json").read_text())
    assert [a["answer"] for a in report["evaluation"]["answers"]] == answers  # and so does training's evaluation


def test_the_console_prints_a_multi_line_answer_exactly(trained, monkeypatch, capsys):
    out = generate(["--model-name", str(trained), "Zähle bis drei, eine Zahl pro Zeile."], monkeypatch, capsys).out
    assert out.endswith("Command: Zähle bis drei, eine Zahl pro Zeile.\nResponse:\nEins\nZwei\nDrei\n")


def test_answers_generated_together_equal_those_one_at_a_time(trained):
    """Left-padded batches give both tokenizer families the answers of one instruction at a time."""
    import torch

    from llm_instruct.answering.generation import Answerer, GenerationSettings
    from llm_instruct.answering.requests import Request
    from llm_instruct.models.modeldir import find_model, load_tokenizer_and_model

    tokenizer, model = load_tokenizer_and_model(find_model(str(trained)), dtype=torch.float32)
    answerer = Answerer(model.eval(), tokenizer, load_style(trained), GenerationSettings())
    requests = [Request(r["instruction"], r.get("input", "")) for r in RECORDS]
    alone = [answerer.answer(request).text for request in requests]
    together = [answer.text for answer in answerer.answer_many(requests[:4])]
    together += [answer.text for answer in answerer.answer_many(requests[4:])]
    assert together == alone
