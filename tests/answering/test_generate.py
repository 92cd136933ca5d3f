"""generate.py against a tiny model trained by instruct_ger.py in the test session."""

import io
import json
import re
import sys

import pytest
from conftest import TRAINING_FILE

from llm_instruct.answering.answer import main
from llm_instruct.answering.generation import cut_answer, stop_token_ids
from llm_instruct.cli import run_cli
from llm_instruct.data.instructions import parse_instruction_file


def generate(argv, monkeypatch=None, stdin=""):
    """Run generate.py's main in-process; returns (exit code, stdout, stderr) via capsys by the caller."""
    if monkeypatch is not None:
        monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(stdin.encode("utf-8", "surrogateescape"))))
    return run_cli(main, argv)


@pytest.fixture(scope="module")
def training_examples(tmp_path_factory):
    path = tmp_path_factory.mktemp("file") / "instructions.txt"
    path.write_text(TRAINING_FILE, encoding="utf-8")
    return parse_instruction_file(path).train


def test_reproduces_trained_answers_and_stops_where_they_end(trained_model_dir, training_examples, monkeypatch, capsys):
    stdin = "".join(f"{example.instruction}\n" for example in training_examples)
    assert generate(["--model-name", str(trained_model_dir), "--jsonl"], monkeypatch, stdin) == 0
    records = [json.loads(line) for line in capsys.readouterr().out.splitlines()]

    assert [r["instruction"] for r in records] == [e.instruction for e in training_examples]
    assert all(set(r) == {"instruction", "response", "new_tokens", "seconds"} for r in records)
    matches = [r["response"] == e.answer for r, e in zip(records, training_examples, strict=True)]
    assert sum(matches) / len(matches) >= 0.9
    # Where an answer is right it ends with the answer: EOS or the newline stopped generation there.
    for record, example in zip(records, training_examples, strict=True):
        assert "\n" not in record["response"]
        if record["response"].startswith(example.answer):
            assert record["response"] == example.answer


def test_console_dialogue_as_in_the_tutorial(trained_model_dir, monkeypatch, capsys):
    stdin = "Zähle bis drei.\n\n   \nNenne ein Tier.\n"
    assert generate(["--model-name", str(trained_model_dir)], monkeypatch, stdin) == 0
    assert capsys.readouterr().out == (
        f"Load model: {trained_model_dir}\n"
        "Prompt:\n"
        "Command: Zähle bis drei.\nResponse:\nEins, zwei, drei.\nPrompt:\n"
        "Command: Nenne ein Tier.\nResponse:\nEin Pferd ist ein Tier.\nPrompt:\n"
    )


def test_instructions_as_arguments_are_answered_in_turn(trained_model_dir, capsys):
    assert generate(["--model-name", str(trained_model_dir), "Zähle bis drei.", "Buchstabiere Haus."]) == 0
    assert capsys.readouterr().out == (
        f"Load model: {trained_model_dir}\n"
        "Command: Zähle bis drei.\nResponse:\nEins, zwei, drei.\n"
        "Command: Buchstabiere Haus.\nResponse:\nH, A, U, S.\n"
    )


def test_stop_strings_cut_the_answer(trained_model_dir, capsys):
    assert generate(["--model-name", str(trained_model_dir), "--jsonl", "--stop", ", zwei", "Zähle bis drei."]) == 0
    assert json.loads(capsys.readouterr().out)["response"] == "Eins"


def test_eval_scores_a_file(trained_model_dir, tmp_path, capsys):
    path = tmp_path / "f.txt"
    path.write_text("Zähle bis drei.#Eins, zwei, drei.\nNenne ein Tier.#Ein Hund ist ein Tier.\n", encoding="utf-8")
    assert generate(["--model-name", str(trained_model_dir), "--eval", str(path)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[-3].split() == [
        "yes", "100.0", "Zähle", "bis", "drei.", "Eins,", "zwei,", "drei.", "Eins,", "zwei,", "drei."
    ]  # fmt: skip
    assert lines[-2].startswith("no ")
    assert re.fullmatch(r"Exact match: 1/2 = 50\.0%, chrF: \d+\.\d", lines[-1])


def test_model_without_template_gets_the_tutorial_prompt(tiny_bloom_dir, capsys):
    assert generate(["--model-name", str(tiny_bloom_dir), "--max-new-tokens", "3", "--num-beams", "1", "Hallo!"]) == 0
    assert f"Notice: {tiny_bloom_dir} holds no prompt template; using the tutorial's 'Anweisung: {{instruction}}'." in (
        capsys.readouterr().err
    )


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--model-name", "{tmp}/missing"], "error: cannot load model '{tmp}/missing': no such local directory"),
        (["--model-name", "{tmp}"], "error: {tmp} is not a model directory: expected config.json"),
        (["--device", "cuda"], "error: --device cuda: no CUDA device is available"),
        (["--temperature", "0.5"], "error: --temperature and --top-p take effect only with --sample"),
    ],
)
def test_errors_are_one_line_with_exit_2(tmp_path, monkeypatch, capsys, argv, message):
    monkeypatch.setattr("torch.cuda.is_available", lambda: False)
    (tmp_path / "notes.txt").write_text("not a model")
    argv = [part.format(tmp=tmp_path) for part in argv]
    assert generate(argv, monkeypatch, "Hallo!\n") == 2
    err = capsys.readouterr().err
    assert err.startswith(message.format(tmp=tmp_path))
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_stop_tokens_of_byte_level_bpe(bpe_tokenizer):
    ids = stop_token_ids(bpe_tokenizer)
    # Byte-level BPE spells the newline byte 'Ċ': every token holding one, and only those, stops.
    newline_tokens = {i for token, i in bpe_tokenizer.get_vocab().items() if "Ċ" in token}
    assert ids[0] == bpe_tokenizer.eos_token_id
    assert set(ids[1:]) == newline_tokens
    assert bpe_tokenizer.convert_tokens_to_ids("Ċ") in newline_tokens


def test_stop_tokens_of_sentencepiece_style(sentencepiece_tokenizer):
    # No learned piece holds a newline, so only the byte-fallback token <0x0A> stops besides EOS.
    assert stop_token_ids(sentencepiece_tokenizer) == [
        sentencepiece_tokenizer.eos_token_id,
        sentencepiece_tokenizer.convert_tokens_to_ids("<0x0A>"),
    ]


@pytest.mark.parametrize(
    ("text", "stop", "answer"),
    [
        ("Eins, zwei.\nNoch mehr", (), "Eins, zwei."),
        ("Eins, zwei. ENDE danach", ("ENDE",), "Eins, zwei. "),
        ("a|b\nc", ("|",), "a"),
        ("ohne Ende", (), "ohne Ende"),
    ],
)
def test_cut_answer(text, stop, answer):
    assert cut_answer(text, stop) == answer


def test_streaming_prints_the_answer_line_once(trained_model_dir, capsys):
    import torch

    from llm_instruct.answering.generation import Answerer, GenerationSettings
    from llm_instruct.data.prompt import load_style
    from llm_instruct.models.modeldir import find_model, load_tokenizer_and_model

    tokenizer, model = load_tokenizer_and_model(find_model(str(trained_model_dir)), dtype=torch.float32)
    answerer = Answerer(model.eval(), tokenizer, load_style(trained_model_dir), GenerationSettings(num_beams=1))
    answer = answerer.answer("Nenne zwei Vögel.", stream=True)
    assert answer.text == "Amsel und Meise sind zwei Vögel."
    assert capsys.readouterr().out == "Amsel und Meise sind zwei Vögel.\n"


def test_held_out_spell_comes_back_in_spell_form(trained_model_dir):
    report = json.loads((trained_model_dir / "training_report.json").read_text())
    spells = [a for a in report["evaluation"]["answers"] if "Zauberspruch" in a["instruction"]]
    assert spells and all(
        re.fullmatch(r"Hokus \w+, Esoterikus \w+, Hömöopathikus \w+, Alohomora!", a["answer"]) for a in spells
    )


class InterruptedInput:
    """Standard input on which the user presses Ctrl-C after the first line."""

    def __iter__(self):
        yield "Zähle bis drei.\n".encode()
        raise KeyboardInterrupt


def test_ctrl_c_ends_the_conversation_with_exit_0(trained_model_dir, monkeypatch, capsys):
    monkeypatch.setattr(sys, "stdin", InterruptedInput())
    assert run_cli(main, ["--model-name", str(trained_model_dir)]) == 0
    assert capsys.readouterr().out.endswith("Response:\nEins, zwei, drei.\nPrompt:\n\n")


def test_bad_eval_file_is_reported_before_the_model_loads(tmp_path, capsys):
    path = tmp_path / "f.txt"
    path.write_text("Frage ohne Trenner\n", encoding="utf-8")
    assert generate(["--model-name", str(tmp_path / "no-model"), "--eval", str(path)]) == 2
    assert capsys.readouterr().err == f"error: {path}:1: expected 'instruction#answer', found no '#'\n"


def test_empty_stop_string_is_refused(capsys):
    assert generate(["--stop", "", "Hallo!"]) == 2
    assert capsys.readouterr().err == "error: --stop needs a non-empty string\n"


def test_jsonl_input_with_an_input_field_and_its_errors(trained_model_dir, monkeypatch, capsys):
    stdin = '{"instruction": "Zähle bis drei."}\n\n{"instruction": "Buchstabiere Haus.", "input": "Haus"}\n'
    assert generate(["--model-name", str(trained_model_dir), "--jsonl", "--jsonl-input"], monkeypatch, stdin) == 0
    records = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert records[0]["response"] == "Eins, zwei, drei."
    assert (records[0].get("input"), records[1]["input"]) == (None, "Haus")

    stdin = '{"instruction": "Zähle bis drei."}\n{"instruction": "Buchstabiere Haus." "input": 1}\n'
    assert generate(["--model-name", str(trained_model_dir), "--jsonl-input"], monkeypatch, stdin) == 2
    assert capsys.readouterr().err.endswith("error: stdin:2: invalid JSON: Expecting ',' delimiter (column 38)\n")


def test_lines_that_are_not_utf8_are_reported_and_the_rest_answered(trained_model_dir, monkeypatch, capsys):
    stdin = io.TextIOWrapper(io.BytesIO(b"Z\xc3\xa4hle bis drei.\n\xfcber\rNenne ein Tier.\r"))
    monkeypatch.setattr(sys, "stdin", stdin)
    assert run_cli(main, ["--model-name", str(trained_model_dir), "--jsonl"]) == 2
    captured = capsys.readouterr()
    assert [json.loads(line)["response"] for line in captured.out.splitlines()] == [
        "Eins, zwei, drei.",
        "Ein Pferd ist ein Tier.",
    ]
    assert "error: stdin:2: not UTF-8 (byte 0xfc at column 1); save the file as UTF-8\n" in captured.err


def test_json_lines_are_read_with_any_case_and_bad_ones_skipped(trained_model_dir, monkeypatch, capsys):
    stdin = '{"Instruction": "Zähle bis drei."}\n[1]\n{"INSTRUCTION": "Nenne ein Tier."}\n'
    assert generate(["--model-name", str(trained_model_dir), "--jsonl", "--jsonl-input"], monkeypatch, stdin) == 2
    captured = capsys.readouterr()
    assert [json.loads(line)["response"] for line in captured.out.splitlines()] == [
        "Eins, zwei, drei.",
        "Ein Pferd ist ein Tier.",
    ]
    assert (
        "error: stdin:2: expected a JSON object with 'instruction' and optional 'input', found list\n" in captured.err
    )


def test_eval_prints_each_row_as_it_is_scored_and_a_summary_after_ctrl_c(
    trained_model_dir, tmp_path, monkeypatch, capsys
):
    from llm_instruct.answering import evaluation

    calls = []

    def score_then_ctrl_c(*args):
        calls.append(args)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real_score(*args)

    real_score = evaluation.answer_examples
    monkeypatch.setattr(evaluation, "answer_examples", score_then_ctrl_c)
    path = tmp_path / "f.txt"
    path.write_text("Zähle bis drei.#Eins, zwei, drei.\nNenne ein Tier.#Ein Pferd ist ein Tier.\n", encoding="utf-8")
    assert generate(["--model-name", str(trained_model_dir), "--eval", str(path), "--batch-size", "1"]) == 130
    captured = capsys.readouterr()
    lines = captured.out.splitlines()
    assert lines[-2].startswith("yes    100.0  Zähle bis drei.")
    assert lines[-1] == "Exact match: 1/1 = 100.0%, chrF: 100.0"
    assert "Interrupted after 1 of 2 answers.\n" in captured.err


def test_a_prompt_longer_than_the_context_is_cut_with_a_warning(gpt2_with_short_context, monkeypatch, capsys):
    long_line = " ".join(["Wort"] * 3000)
    stdin = f"{long_line}\nHallo!\n"
    argv = ["--model-name", str(gpt2_with_short_context), "--jsonl", "--max-new-tokens", "8", "--num-beams", "2"]
    assert generate(argv, monkeypatch, stdin) == 0
    captured = capsys.readouterr()
    assert len(captured.out.splitlines()) == 2  # both lines answered
    warning = [line for line in captured.err.splitlines() if line.startswith("Warning: stdin:1:")]
    assert len(warning) == 1 and "more than the model's 128 positions hold beside the answer" in warning[0]


@pytest.fixture(scope="module")
def gpt2_with_short_context(tmp_path_factory, bpe_tokenizer):
    from transformers import GPT2Config, GPT2LMHeadModel

    directory = tmp_path_factory.mktemp("gpt2-128")
    config = GPT2Config(
        vocab_size=len(bpe_tokenizer), n_positions=128, n_embd=32, n_layer=1, n_head=2,
        bos_token_id=bpe_tokenizer.bos_token_id, eos_token_id=bpe_tokenizer.eos_token_id,
    )  # fmt: skip
    GPT2LMHeadModel(config).save_pretrained(directory)
    bpe_tokenizer.save_pretrained(directory)
    return directory


def test_streaming_never_shows_what_a_stop_string_will_cut(bpe_tokenizer, capsys):
    from llm_instruct.answering.generation import AnswerStreamer

    streamer = AnswerStreamer(bpe_tokenizer, stop=("die",))
    for piece in [" Sieh", " d", "ie", " Sonne"]:
        streamer.on_finalized_text(piece)
        assert "d" not in capsys.readouterr().out
    streamer.on_finalized_text("", stream_end=True)
    assert capsys.readouterr().out == "\n"


def test_streaming_prints_exactly_the_finished_answer(bpe_tokenizer, capsys):
    from llm_instruct.answering.generation import AnswerStreamer

    streamer = AnswerStreamer(bpe_tokenizer)
    for piece in ["Eins, ", "zwei ", " ", "drei.", "\nNoch"]:
        streamer.on_finalized_text(piece)
    streamer.on_finalized_text("", stream_end=True)
    assert capsys.readouterr().out == "Eins, zwei  drei.\n"


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda d: (d / "prompt_template.json").write_text("{"), "{d}/prompt_template.json: cannot be read as JSON"),
        (
            lambda d: (d / "prompt_template.json").write_text('{"prompt_template": "Frage: {frage}"}'),
            "{d}/prompt_template.json: 'prompt_template' must contain {{instruction}} exactly once, got 'Frage: {{frage}}'",
        ),
        (
            lambda d: (d / "prompt_template.json").write_text('{"template": 1}'),
            "{d}/prompt_template.json: expected a JSON object with the string 'prompt_template'",
        ),
        (
            lambda d: (d / "model.safetensors").write_bytes((d / "model.safetensors").read_bytes()[:1000]),
            "{d}: the weights cannot be read (",
        ),
    ],
)
def test_a_damaged_model_directory_is_one_line(trained_model_dir, tmp_path, capsys, damage, message):
    import shutil

    damaged = tmp_path / "damaged"
    shutil.copytree(trained_model_dir, damaged)
    damage(damaged)
    assert generate(["--model-name", str(damaged), "Hallo!"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: " + message.format(d=damaged))
    assert len(err.splitlines()) == 1


def test_a_file_as_model_name_is_one_line(tmp_path, capsys):
    (tmp_path / "config.json").write_text("{}")
    assert generate(["--model-name", str(tmp_path / "config.json"), "Hallo!"]) == 2
    assert capsys.readouterr().err == (
        f"error: {tmp_path / 'config.json'} is a file; a model is a directory (with config.json) or a Hugging Face "
        f"Hub name\n"
    )


def test_a_closed_stdin_and_a_closed_pipe_end_without_a_traceback(trained_model_dir):
    import subprocess

    from conftest import ROOT

    closed = subprocess.run(
        ["bash", "-c", f'"{sys.executable}" generate.py --model-name "{trained_model_dir}" <&-'],
        capture_output=True, text=True, cwd=ROOT, check=False,
    )  # fmt: skip
    assert (closed.returncode, closed.stderr) == (
        2,
        "error: standard input is closed; give the instructions as arguments or on standard input\n",
    )
    piped = subprocess.run(
        ["bash", "-c", (f'"{sys.executable}" generate.py --model-name "{trained_model_dir}" --dtype float32 '
                        f'"Zähle bis drei." "Nenne ein Tier." | head -1; exit "${{PIPESTATUS[0]}}"')],
        capture_output=True, text=True, cwd=ROOT, check=False,
    )  # fmt: skip
    assert piped.stdout == f"Load model: {trained_model_dir}\n"
    assert "Traceback" not in piped.stderr and piped.returncode in (0, 141)  # 0: all fit into the pipe in time


def test_a_reader_that_goes_away_ends_the_output_quietly():
    """More output than any pipe holds, read by `head -1`: the writer must meet the closed pipe."""
    import subprocess

    from conftest import ROOT

    program = (
        "import sys; from llm_instruct.cli import run_cli; "
        "sys.exit(run_cli(lambda argv: [print('x' * 999) for _ in range(10**4)]))"
    )
    piped = subprocess.run(
        ["bash", "-c", f'"{sys.executable}" -c "{program}" | head -1; exit "${{PIPESTATUS[0]}}"'],
        capture_output=True, text=True, cwd=ROOT, check=False,
    )  # fmt: skip
    assert (piped.returncode, piped.stdout, piped.stderr) == (141, "x" * 999 + "\n", "")
