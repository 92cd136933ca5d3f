"""A model name is decided once, quickly: found, unknown, or unreachable (then the cache, if any)."""

import os
import subprocess
import sys
import time

import pytest
from conftest import ROOT

from llm_instruct.cli import UserError, run_cli
from llm_instruct.models.hub import HubAnswer, ModelSource, resolve_model_source


def resolve(name, answer, cached=False, offline=False):
    asked = []

    def ask(asked_name):
        asked.append(asked_name)
        return answer

    source = resolve_model_source(name, ask=ask, cached=lambda _: cached, offline=lambda: offline)
    return source, asked


def test_a_local_directory_asks_nobody(tmp_path):
    assert resolve(str(tmp_path), HubAnswer.UNKNOWN) == (ModelSource(str(tmp_path)), [])


def test_a_model_on_the_hub_loads_from_the_hub():
    assert resolve("malteos/bloom-1b5-clp-german", HubAnswer.FOUND) == (
        ModelSource("malteos/bloom-1b5-clp-german"),
        ["malteos/bloom-1b5-clp-german"],
    )


def test_unreachable_hub_with_a_cached_copy_loads_the_copy_without_asking_again():
    source, _ = resolve("malteos/bloom-1b5-clp-german", HubAnswer.UNREACHABLE, cached=True)
    assert source == ModelSource("malteos/bloom-1b5-clp-german", local_files_only=True)


def test_offline_mode_asks_nobody_and_loads_only_a_cached_copy():
    assert resolve("some/model", HubAnswer.FOUND, cached=True, offline=True) == (ModelSource("some/model", True), [])
    with pytest.raises(UserError) as raised:
        resolve("some/model", HubAnswer.FOUND, offline=True)
    assert str(raised.value) == (
        "cannot load model 'some/model': no such local directory, and with the Hugging Face Hub switched off "
        "(HF_HUB_OFFLINE) only a cached copy could serve, but there is none. Pass a local model directory with "
        "--model-name, or download the model once with the Hub on."
    )


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        (HubAnswer.UNREACHABLE, "cannot load model 'some/model': no such local directory, the Hugging Face Hub cannot"),
        (HubAnswer.UNKNOWN, "cannot load model 'some/model': no such local directory, and the Hugging Face Hub knows"),
        (HubAnswer.GATED, "cannot load model 'some/model': it is gated on the Hugging Face Hub"),
        (HubAnswer.NOT_A_MODEL, "cannot load model 'some/model': the Hugging Face Hub repository has no config.json"),
    ],
)
def test_names_that_cannot_load_are_one_clear_line(answer, message):
    with pytest.raises(UserError, match=f"^{message}"):
        resolve("some/model", answer)


def test_generate_fails_fast_without_network_and_without_offline_mode(tmp_path):
    """The real script, without HF_HUB_OFFLINE, against no reachable network, as on an offline laptop."""
    env = {key: value for key, value in os.environ.items() if key not in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")}
    env["HF_HOME"] = str(tmp_path / "hf")  # an empty cache
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, str(ROOT / "generate.py"), "--model-name", "nobody/no-such-model", "Hallo!"],
        capture_output=True, text=True, env=env, check=False,
    )  # fmt: skip
    elapsed = time.monotonic() - started
    assert result.returncode == 2
    assert result.stderr.startswith("error: cannot load model 'nobody/no-such-model': no such local directory")
    assert len(result.stderr.splitlines()) == 1  # one line: no retries, no traceback
    assert result.stdout == ""  # the name is decided before anything loads
    assert elapsed < 15  # the client's own retries take over 40 s


def test_instruct_ger_fails_fast_too(training_file, tmp_path, monkeypatch, capsys):
    from llm_instruct.training.train import main

    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_OFFLINE", False)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    started = time.monotonic()
    argv = ["--input-file", str(training_file), "--model-name", "nobody/no-such-model", "--output-dir", str(tmp_path)]
    assert run_cli(main, argv) == 2
    assert time.monotonic() - started < 10
    assert capsys.readouterr().err.startswith("error: cannot load model 'nobody/no-such-model'")
