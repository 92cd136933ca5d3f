"""Where a model comes from: a local directory, the Hugging Face Hub, or the Hub's cache.

Asked for a name it cannot reach, the Hub client retries with growing pauses, once for the
tokenizer and once more for the model: about 46 s before an offline user learns anything.
One quick request decides it instead, before anything loads: found, unknown, or no
connection, and then whether a cached copy can stand in.
"""

import enum
from dataclasses import dataclass
from pathlib import Path

from ..cli import UserError
from .lora import ADAPTER_CONFIG

# Seconds to wait for the Hub's answer about one file; a reachable Hub answers in well under one.
PROBE_TIMEOUT = 5.0


@dataclass(frozen=True)
class ModelSource:
    name: str  # hub name or local directory
    local_files_only: bool = False  # offline, or the Hub unreachable: load from the cache alone


class HubAnswer(enum.Enum):
    FOUND = "found"
    UNKNOWN = "unknown"  # no such repository, or a private one
    GATED = "gated"
    NOT_A_MODEL = "not a model"  # the repository has no config.json
    UNREACHABLE = "unreachable"


def ask_hub(name: str, timeout: float = PROBE_TIMEOUT) -> HubAnswer:
    """One request for the model's config.json, without retries."""
    from huggingface_hub import get_hf_file_metadata, hf_hub_url
    from huggingface_hub.errors import (
        EntryNotFoundError,
        GatedRepoError,
        HFValidationError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    try:
        get_hf_file_metadata(hf_hub_url(name, "config.json"), timeout=timeout)
    except GatedRepoError:
        return HubAnswer.GATED
    except (RepositoryNotFoundError, RevisionNotFoundError, HFValidationError):
        return HubAnswer.UNKNOWN
    except EntryNotFoundError:
        return HubAnswer.NOT_A_MODEL
    except Exception:  # noqa: BLE001 - connection refused, DNS, timeout, proxy, server error: the client library decides the type
        return HubAnswer.UNREACHABLE
    return HubAnswer.FOUND


def is_cached(name: str) -> bool:
    from huggingface_hub import try_to_load_from_cache

    try:
        return isinstance(try_to_load_from_cache(name, "config.json"), str)
    except ValueError:  # not a valid repository name
        return False


def is_offline() -> bool:
    from huggingface_hub import constants

    return constants.HF_HUB_OFFLINE


def resolve_model_source(name: str, *, ask=ask_hub, cached=is_cached, offline=is_offline) -> ModelSource:
    if Path(name).is_dir():
        return ModelSource(name)
    if offline():
        if not cached(name):
            raise UserError(
                f"cannot load model {name!r}: no such local directory, and with the Hugging Face Hub switched off "
                f"(HF_HUB_OFFLINE) only a cached copy could serve, but there is none. Pass a local model directory "
                f"with --model-name, or download the model once with the Hub on."
            )
        return ModelSource(name, local_files_only=True)
    answer = ask(name)
    if answer is HubAnswer.FOUND:
        return ModelSource(name)
    if answer is HubAnswer.UNREACHABLE:
        if cached(name):
            return ModelSource(name, local_files_only=True)
        raise UserError(
            f"cannot load model {name!r}: no such local directory, the Hugging Face Hub cannot be reached "
            f"(no connection?) and holds no cached copy. Pass a local model directory with --model-name, "
            f"or connect once to download it."
        )
    raise UserError(
        {
            HubAnswer.UNKNOWN: f"cannot load model {name!r}: no such local directory, and the Hugging Face Hub "
            f"knows no such model (check the name; a private model needs `hf auth login`). "
            f"Pass a local model directory with --model-name, or check the name.",
            HubAnswer.GATED: f"cannot load model {name!r}: it is gated on the Hugging Face Hub; accept its terms "
            f"on the model page and log in with `hf auth login`",
            HubAnswer.NOT_A_MODEL: f"cannot load model {name!r}: the Hugging Face Hub repository has no "
            f"config.json, so it holds no transformers model",
        }[answer]
    )


def not_a_model_directory(name: str) -> UserError:
    found = ", ".join(sorted(p.name for p in Path(name).iterdir())) or "nothing"
    return UserError(
        f"{name} is not a model directory: expected config.json, weights (model.safetensors) "
        f"and tokenizer files such as tokenizer.json, or a LoRA adapter ({ADAPTER_CONFIG}); found {found}"
    )


def check_model_directory(name: str) -> None:
    """A local directory given as a model must hold one (a model's config.json or an adapter)."""
    directory = Path(name)
    if directory.is_file():
        raise UserError(f"{name} is a file; a model is a directory (with config.json) or a Hugging Face Hub name")
    if directory.is_dir() and not (directory / ADAPTER_CONFIG).is_file() and not (directory / "config.json").is_file():
        raise not_a_model_directory(name)
