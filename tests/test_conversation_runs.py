"""Conversations end to end, for both tokenizer families: trained on gespraech_bsp_1.jsonl, a tiny
BLOOM and a tiny Llama give the assistant turns back through generate.py --eval, the same answers
through plain transformers with the saved chat template and generation config, and through
generate.py --chat and --jsonl-input."""

import io
import itertools
import json
import sys

import pytest
import torch
from conftest import ROOT, build_tiny_llama, template_start
from transformers import AutoModelForCausalLM, AutoTokenizer

from llm_instruct.answering.answer import main as generate_main
from llm_instruct.answering.chat import Conversation
from llm_instruct.answering.requests import Request
from llm_instruct.cli import run_cli
from llm_instruct.data.prompt import PromptStyle
from llm_instruct.models.tiny import build_tiny_bloom
from llm_instruct.training.train import build_parser, run

DATA = ROOT / "gespraech_bsp_1.jsonl"
SHAREGPT_ROLES = {"human": "user", "gpt": "assistant", "system": "system"}


def as_messages(record: dict) -> list[dict]:
    """A record's turns as messages; the file holds one conversation in ShareGPT's form."""
    if "messages" in record:
        return record["messages"]
    return [{"role": SHAREGPT_ROLES[turn["from"]], "content": turn["value"]} for turn in record["conversations"]]


CONVERSATIONS = [as_messages(json.loads(line)) for line in DATA.read_text(encoding="utf-8").splitlines()]


def turn_texts() -> list[str]:
    style = PromptStyle()
    return [
        style.format(asked["content"]) + answer["content"]
        for messages in CONVERSATIONS
        for asked, answer in itertools.pairwise(messages)
        if asked["role"] == "user"
    ]


@pytest.fixture(scope="module", params=["bloom", "llama"])
def trained(request, tmp_path_factory):
    workdir = tmp_path_factory.mktemp(request.param)
    if request.param == "bloom":
        base = build_tiny_bloom(turn_texts(), workdir / "base", seed=0, hidden_size=128, layers=2)
    else:
        base = build_tiny_llama(turn_texts(), workdir / "base")
    argv = ["--input-file", str(DATA), "--model-name", str(base), "--output-dir", str(workdir), "--output-model", "m"]
    argv += ["--eval-file", str(DATA), "--epochs", "40", "--learning-rate", "3e-3", "--seed", "1"]
    return run(build_parser().parse_args(argv))


def generate(argv, monkeypatch, capsys, stdin=""):
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(stdin.encode())))
    capsys.readouterr()
    assert run_cli(generate_main, argv) == 0
    return capsys.readouterr()


def test_assistant_turns_come_back_through_eval_and_through_plain_transformers(trained, monkeypatch, capsys):
    scored = generate(["--model-name", str(trained), "--eval", str(DATA), "--jsonl"], monkeypatch, capsys)
    rows = [json.loads(line) for line in scored.out.splitlines()]
    assert len(rows) == 55
    assert sum(row["match"] for row in rows) / len(rows) >= 0.9

    # Any tool: the saved chat template and generation config, nothing of this project.
    tokenizer = AutoTokenizer.from_pretrained(trained)
    model = AutoModelForCausalLM.from_pretrained(trained, dtype=torch.float32)
    answers = []
    for messages in CONVERSATIONS:
        for end, message in enumerate(messages):
            if message["role"] == "assistant":
                inputs = tokenizer.apply_chat_template(
                    messages[:end], add_generation_prompt=True, return_tensors="pt", return_dict=True
                )
                output = model.generate(**inputs)
                answers.append(tokenizer.decode(output[0, inputs["input_ids"].shape[1] :], skip_special_tokens=True))
    assert [answer.strip() for answer in answers] == [row["response"] for row in rows]


def test_the_saved_generation_config_searches_as_generate_py_and_stops_at_the_end_of_a_turn(trained):
    tokenizer = AutoTokenizer.from_pretrained(trained)
    config = AutoModelForCausalLM.from_pretrained(trained).generation_config
    assert (config.eos_token_id, config.num_beams, config.max_new_tokens, config.do_sample) == (
        tokenizer.eos_token_id,
        5,
        200,
        False,
    )


def test_the_chat_template_gives_the_trained_prompt_of_an_instruction(trained):
    tokenizer = AutoTokenizer.from_pretrained(trained)
    prompt = tokenizer.apply_chat_template(
        [{"role": "user", "content": "Hallo!"}], add_generation_prompt=True, tokenize=False
    )
    assert prompt == template_start(tokenizer) + PromptStyle().format("Hallo!")
    assert (trained / "chat_template.jinja").is_file()


def test_chat_keeps_the_conversation_until_an_empty_line(trained, monkeypatch, capsys):
    lines = "Nenne einen Fluss.\nUnd noch einen?\n\nNenne eine Stadt.\nUnd noch eine?\n/reset\nUnd noch eine?\n"
    result = generate(["--model-name", str(trained), "--chat", "--jsonl"], monkeypatch, capsys, lines)
    answers = [json.loads(line)["response"] for line in result.out.splitlines()]
    assert answers[:4] == [
        "Der Rhein ist ein Fluss.",
        "Die Elbe ist auch ein Fluss.",
        "München ist eine Stadt.",
        "Hamburg ist auch eine Stadt.",
    ]
    assert result.err.count("New conversation.") == 2


def test_jsonl_input_answers_the_last_user_turn_of_a_conversation(trained, monkeypatch, capsys):
    record = {"messages": CONVERSATIONS[2][:3]}  # Stadt, München, "Und noch eine?"
    result = generate(
        ["--model-name", str(trained), "--jsonl", "--jsonl-input"], monkeypatch, capsys, json.dumps(record) + "\n"
    )
    assert json.loads(result.out)["response"] == "Hamburg ist auch eine Stadt."


class FitsTwoTurns:
    context = 64

    def fits(self, request: Request) -> bool:
        return len(request.history) <= 2


def test_a_long_conversation_leaves_out_its_oldest_turns_with_a_notice(capsys):
    conversation = Conversation(FitsTwoTurns())
    for number in range(3):
        conversation.record(conversation.ask(f"Frage {number}", "stdin:1"), f"Antwort {number}")
    request = conversation.ask("Frage 3", "stdin:4")
    assert [turn.instruction for turn in request.history] == ["Frage 1", "Frage 2"]
    assert capsys.readouterr().err == (
        "Notice: the conversation no longer fits the model's 64 positions; its oldest turn is left out.\n"
    )
