"""Offline fixtures: tokenizers trained in-process and tiny models saved and reloaded like hub models."""

import contextlib
import json
import os
from pathlib import Path

os.environ["HF_HUB_OFFLINE"] = "1"  # before transformers is imported: nothing may touch the network

# The checkout, where the two scripts and the READMEs are.
ROOT = Path(__file__).resolve().parent.parent

import pytest
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
from transformers import AutoTokenizer, PreTrainedTokenizerFast

from llm_instruct.data.prompt import PromptStyle
from llm_instruct.models.tiny import build_tiny_bloom, train_byte_level_tokenizer
from llm_instruct.planning.precision import MatmulTiming

# Small enough to train in seconds, varied enough to need the template, EOS and the newline stop.
TRAINING_FILE = """\
# Kleine Testdatei.
Hallo!#Hallo, schön, dass Du da bist.
Wer bist Du?#Ich bin ein kleines Sprachmodell.
Nenne ein Tier.#Ein Pferd ist ein Tier.
Nenne eine Farbe.#Blau ist eine Farbe.
Nenne zwei Vögel.#Amsel und Meise sind zwei Vögel.
Nenne drei Flüsse.#Elbe, Weser und Mosel sind drei Flüsse.
Nenne drei Städte und gib sie als Pythonarray aus.#['München', 'Nürnberg', 'Stuttgart']
Nenne zwei Gemüse und gib sie als Pythonarray aus.#['Möhre', 'Lauch']
Sage mir einen Zauberspruch zu drei Städten.#Hokus Düsseldorf, Esoterikus Köln, Hömöopathikus Essen, Alohomora!
Sage mir einen Zauberspruch zu drei Flüssen.#Hokus Rhein, Esoterikus Main, Hömöopathikus Donau, Alohomora!
Sage mir einen Zauberspruch zu drei Tieren.#Hokus Katze, Esoterikus Maus, Hömöopathikus Eule, Alohomora!
Zähle bis drei.#Eins, zwei, drei.
Buchstabiere Haus.#H, A, U, S.
Übersetze Hund ins Englische.#Hund heißt auf Englisch dog.
# _EVAL_
Nenne eine Blume.#Die Tulpe ist eine Blume.
Sage mir einen Zauberspruch zu drei Farben.#Hokus Rot, Esoterikus Grün, Hömöopathikus Blau, Alohomora!
"""


def file_texts(text: str = TRAINING_FILE) -> list[str]:
    """Prompt and answer of every line, the text a tokenizer for these tests is trained on."""
    texts = []
    for line in text.splitlines():
        if line and not line.startswith("#"):
            instruction, _, answer = line.rpartition("#")
            texts.append(PromptStyle().format(instruction) + answer)
    return texts


def template_start(tokenizer) -> str:
    """What the project's chat template renders before the first message: nothing for a tokenizer
    that puts no BOS first; else the BOS and a space, so that the Llama-style tokenizer's first
    word keeps its '▁', as when the tokenizer encodes the prompt text itself."""
    return tokenizer.bos_token + " " if tokenizer("a")["input_ids"][0] == tokenizer.bos_token_id else ""


@contextlib.contextmanager
def neutral_precision_probe():
    """This CPU's bf16 speed, as the code measures it, replaced by a draw: bf16 neither faster
    nor slower than fp32. No test may depend on what the machine running it is good at."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("llm_instruct.planning.precision.time_matmuls", lambda shape, repeats=5: MatmulTiming(1e-3, 1e-3))
        yield


@pytest.fixture(scope="session", autouse=True)
def _neutral_precision_probe():
    """For the whole session, fixtures of every scope included; a test may inject its own timing."""
    with neutral_precision_probe():
        yield


@pytest.fixture
def training_file(tmp_path):
    path = tmp_path / "instructions.txt"
    path.write_text(TRAINING_FILE, encoding="utf-8")
    return path


def _reloaded(tokenizer, directory):
    tokenizer.save_pretrained(directory)
    return AutoTokenizer.from_pretrained(directory)


@pytest.fixture(scope="session")
def bpe_tokenizer(tmp_path_factory):
    """Byte-level BPE, as GPT-2 and BLOOM use: spaces become 'Ġ', newlines 'Ċ'."""
    return _reloaded(train_byte_level_tokenizer(file_texts()), tmp_path_factory.mktemp("bpe"))


def build_sentencepiece_style_tokenizer(texts: list[str]) -> PreTrainedTokenizerFast:
    """Llama-style: metaspace '▁', a BOS on every prompt, and byte fallback for unseen characters.

    The BPE is first trained without newlines, so that '\\n' must fall back to the byte
    token <0x0A>, then rebuilt with the 256 byte tokens where Llama keeps them (ids 3-258).
    """
    specials = ["<unk>", "<s>", "</s>"]
    learner = Tokenizer(models.BPE(unk_token="<unk>"))
    learner.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="first")
    trainer = trainers.BpeTrainer(vocab_size=400, special_tokens=specials, show_progress=False)
    learner.train_from_iterator([text.replace("\n", " ") for text in texts], trainer)
    learned = json.loads(learner.to_str())["model"]

    vocab = {token: index for index, token in enumerate(specials + [f"<0x{byte:02X}>" for byte in range(256)])}
    for token, _ in sorted(learned["vocab"].items(), key=lambda item: item[1]):
        vocab.setdefault(token, len(vocab))
    merges = [tuple(merge) if isinstance(merge, list) else tuple(merge.split(" ")) for merge in learned["merges"]]
    backend = Tokenizer(models.BPE(vocab=vocab, merges=merges, unk_token="<unk>", byte_fallback=True, fuse_unk=True))
    backend.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="first", split=False)
    backend.decoder = decoders.Sequence(
        [decoders.Replace("▁", " "), decoders.ByteFallback(), decoders.Fuse(), decoders.Strip(" ", 1, 0)]
    )
    backend.post_processor = processors.TemplateProcessing(single="<s> $A", special_tokens=[("<s>", 1)])
    backend.add_special_tokens(specials)
    return PreTrainedTokenizerFast(tokenizer_object=backend, unk_token="<unk>", bos_token="<s>", eos_token="</s>")


def build_tiny_llama(texts: list[str], directory):
    """A randomly initialised Llama with a Llama-style tokenizer trained on texts, saved like a hub model."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    _reloaded(build_sentencepiece_style_tokenizer(texts), directory)
    tokenizer = AutoTokenizer.from_pretrained(directory)
    config = LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=4, bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.eos_token_id,
    )  # fmt: skip
    torch.manual_seed(0)
    LlamaForCausalLM(config).save_pretrained(directory)
    return directory


@pytest.fixture(scope="session")
def sentencepiece_tokenizer(tmp_path_factory):
    return _reloaded(build_sentencepiece_style_tokenizer(file_texts()), tmp_path_factory.mktemp("spm"))


@pytest.fixture(scope="session")
def tiny_bloom_dir(tmp_path_factory):
    """A randomly initialised BLOOM saved like a hub model, for --model-name PATH."""
    return build_tiny_bloom(file_texts(), tmp_path_factory.mktemp("tiny-bloom-base"), seed=0, hidden_size=64, layers=2)


@pytest.fixture(scope="session")
def trained_model_dir(tmp_path_factory):
    """A tiny-bloom taught TRAINING_FILE by instruct_ger.py.

    The file is so small that the preset's epochs give too few steps: smaller batches and
    more epochs give it about as many steps as the example file gets.
    """
    from llm_instruct.training.train import build_parser, run

    workdir = tmp_path_factory.mktemp("trained")
    training_file = workdir / "instructions.txt"
    training_file.write_text(TRAINING_FILE, encoding="utf-8")
    argv = ["--input-file", str(training_file), "--model-name", "tiny-bloom", "--output-dir", str(workdir)]
    argv += ["--batch-size", "4", "--epochs", "80"]
    return run(build_parser().parse_args(argv))
