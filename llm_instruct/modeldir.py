"""Loading a model and tokenizer by hub name or path, and writing a model directory atomically."""

import os
import shutil
from pathlib import Path

from transformers import AutoModelForCausalLM, AutoTokenizer

from .cli import UserError
from .lora import ADAPTER_CONFIG, load_adapter_model


def _not_a_model_directory(name: str) -> UserError:
    found = ", ".join(sorted(p.name for p in Path(name).iterdir())) or "nothing"
    return UserError(
        f"{name} is not a model directory: expected config.json, weights (model.safetensors) "
        f"and tokenizer files such as tokenizer.json, or a LoRA adapter ({ADAPTER_CONFIG}); found {found}"
    )


def _explain_unloadable(name: str, error: Exception) -> UserError:
    if Path(name).is_dir():
        return _not_a_model_directory(name)
    return UserError(
        f"cannot load model {name!r}: no such local directory, and the Hugging Face Hub did not "
        f"provide it (unknown name, private model, or no connection). Pass a local model "
        f"directory with --model-name, or check the name. ({type(error).__name__})"
    )


def load_tokenizer_and_model(name: str, *, dtype, trust_remote_code: bool = False):
    """Load both, by hub name or local path, in an explicit dtype (transformers 5 would otherwise
    keep the checkpoint's stored dtype, e.g. fp16, which must not be trained on a CPU)."""
    directory = Path(name)
    is_adapter = (directory / ADAPTER_CONFIG).is_file()
    if directory.is_dir() and not is_adapter and not (directory / "config.json").is_file():
        raise _not_a_model_directory(name)
    try:
        tokenizer = AutoTokenizer.from_pretrained(name, trust_remote_code=trust_remote_code)
        if is_adapter:
            model = load_adapter_model(name, dtype=dtype, trust_remote_code=trust_remote_code)
        else:
            model = AutoModelForCausalLM.from_pretrained(name, dtype=dtype, trust_remote_code=trust_remote_code)
    except (OSError, ValueError) as error:
        raise _explain_unloadable(name, error) from error
    if tokenizer.eos_token_id is None:
        raise UserError(f"the tokenizer of {name} defines no EOS token, so answers could not be taught to end")
    if tokenizer.pad_token_id is None:
        # Safe here: the collator finds padding by position, so pad == eos hides no EOS from the loss.
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer, model


class StagedDirectory:
    """A model directory written beside its final place and renamed into it once complete.

    An interrupted run leaves a hidden `.NAME.partial` sibling (cleared by the next run) and
    never a half-written model where a good one stood. The staging name is fixed, not random,
    so that every process of a distributed run writes to the same place.
    """

    def __init__(self, final_dir):
        self.final = Path(final_dir)
        self.staging = self.final.with_name(f".{self.final.name}.partial")
        self.previous = self.final.with_name(f".{self.final.name}.previous")

    def prepare(self) -> None:
        if self.previous.exists() and not self.final.exists():
            os.replace(self.previous, self.final)  # an earlier run died between the two renames of publish
        for leftover in (self.staging, self.previous):
            shutil.rmtree(leftover, ignore_errors=True)
        self.staging.mkdir(parents=True)

    def publish(self) -> None:
        if self.final.exists():
            os.replace(self.final, self.previous)
            os.replace(self.staging, self.final)
            shutil.rmtree(self.previous)
        else:
            os.replace(self.staging, self.final)
