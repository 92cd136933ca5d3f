"""Loading a model and tokenizer by hub name or path, and writing a model directory atomically."""

import os
import shutil
from contextlib import contextmanager
from pathlib import Path

from transformers import AutoModelForCausalLM, AutoTokenizer

from .cli import UserError


def _explain_unloadable(name: str, error: Exception) -> UserError:
    path = Path(name)
    if path.is_dir():
        found = ", ".join(sorted(p.name for p in path.iterdir())) or "nothing"
        return UserError(
            f"{name} is not a model directory: expected config.json, weights (model.safetensors) "
            f"and tokenizer files such as tokenizer.json; found {found}"
        )
    return UserError(
        f"cannot load model {name!r}: no such local directory, and the Hugging Face Hub did not "
        f"provide it (unknown name, private model, or no connection). Pass a local model "
        f"directory with --model-name, or check the name. ({type(error).__name__})"
    )


def load_tokenizer_and_model(name: str, *, dtype, trust_remote_code: bool = False):
    """Load both, by hub name or local path, in an explicit dtype (transformers 5 would otherwise
    keep the checkpoint's stored dtype, e.g. fp16, which must not be trained on a CPU)."""
    if Path(name).is_dir() and not (Path(name) / "config.json").is_file():
        raise _explain_unloadable(name, FileNotFoundError("config.json"))
    try:
        tokenizer = AutoTokenizer.from_pretrained(name, trust_remote_code=trust_remote_code)
        model = AutoModelForCausalLM.from_pretrained(name, dtype=dtype, trust_remote_code=trust_remote_code)
    except (OSError, ValueError) as error:
        raise _explain_unloadable(name, error) from error
    if tokenizer.eos_token_id is None:
        raise UserError(f"the tokenizer of {name} defines no EOS token, so answers could not be taught to end")
    if tokenizer.pad_token_id is None:
        # Safe here: the collator finds padding by position, so pad == eos hides no EOS from the loss.
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer, model


@contextmanager
def atomic_directory(final_dir):
    """Yield a staging directory beside final_dir that replaces it only once the block completes.

    An interrupted run leaves a hidden `.NAME.partial` sibling (cleared by the next run) and
    never a half-written model where a good one stood. The staging name is fixed, not random,
    so that every process of a distributed run writes to the same place.
    """
    final = Path(final_dir)
    staging = final.with_name(f".{final.name}.partial")
    previous = final.with_name(f".{final.name}.previous")
    if previous.exists() and not final.exists():
        os.replace(previous, final)  # an earlier run died between its two renames
    for leftover in (staging, previous):
        shutil.rmtree(leftover, ignore_errors=True)
    staging.mkdir(parents=True)
    yield staging
    if final.exists():
        os.replace(final, previous)
        os.replace(staging, final)
        shutil.rmtree(previous)
    else:
        os.replace(staging, final)
