"""Loading a model and tokenizer by hub name or path, and writing a model directory atomically."""

import contextlib
import os
import shutil
from pathlib import Path

from safetensors import SafetensorError
from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

from ..cli import UserError
from .hub import ModelSource, check_model_directory, not_a_model_directory, resolve_model_source
from .lora import ADAPTER_CONFIG, adapter_base, apply_saved_adapter


def _explain_unloadable(name: str, error: Exception) -> UserError:
    if Path(name).is_dir():
        return not_a_model_directory(name)
    return UserError(
        f"cannot load model {name!r}: no such local directory, and the Hugging Face Hub did not "
        f"provide it (unknown name, private model, or no connection). Pass a local model "
        f"directory with --model-name, or check the name. ({type(error).__name__})"
    )


@contextlib.contextmanager
def _explained(name: str):
    """Loading errors of transformers and the Hub client, as one line that says what to do."""
    try:
        yield
    except SafetensorError as error:
        raise UserError(
            f"{name}: the weights cannot be read ({error}): the file is damaged or was cut off while being "
            f"written or copied; copy it again or train anew"
        ) from error
    except (OSError, ValueError) as error:
        raise _explain_unloadable(name, error) from error


def load_tokenizer(source: ModelSource, *, trust_remote_code: bool = False):
    with _explained(source.name):
        tokenizer = AutoTokenizer.from_pretrained(
            source.name, trust_remote_code=trust_remote_code, local_files_only=source.local_files_only
        )
    if tokenizer.eos_token_id is None:
        raise UserError(f"the tokenizer of {source.name} defines no EOS token, so answers could not be taught to end")
    if tokenizer.pad_token_id is None:
        # Safe here: the collator finds padding by position, so pad == eos hides no EOS from the loss.
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def load_config(source: ModelSource, *, trust_remote_code: bool = False):
    with _explained(source.name):
        return AutoConfig.from_pretrained(
            source.name, trust_remote_code=trust_remote_code, local_files_only=source.local_files_only
        )


def load_model(source: ModelSource, *, dtype, trust_remote_code: bool = False):
    """The model in an explicit dtype (transformers 5 would otherwise keep the checkpoint's stored
    dtype, e.g. fp16, which must not be trained on a CPU); a LoRA adapter directory comes merged."""
    if (Path(source.name) / ADAPTER_CONFIG).is_file():
        base = resolve_model_source(adapter_base(source.name))
        with _explained(source.name):
            return apply_saved_adapter(load_model(base, dtype=dtype, trust_remote_code=trust_remote_code), source.name)
    with _explained(source.name):
        return AutoModelForCausalLM.from_pretrained(
            source.name, dtype=dtype, trust_remote_code=trust_remote_code, local_files_only=source.local_files_only
        )


def find_model(name: str) -> ModelSource:
    """A model named on the command line: a local model or adapter directory, or a hub name the
    Hub or its cache can provide. Decided before anything loads or is measured."""
    check_model_directory(name)
    return resolve_model_source(name)


def load_tokenizer_and_model(source: ModelSource, *, dtype, trust_remote_code: bool = False):
    """Both, as generate.py loads them."""
    tokenizer = load_tokenizer(source, trust_remote_code=trust_remote_code)
    return tokenizer, load_model(source, dtype=dtype, trust_remote_code=trust_remote_code)


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
