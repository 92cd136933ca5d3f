"""LoRA through peft: which modules get adapters, wrapping a model, loading and merging adapters.

peft is imported only here and only when LoRA is used, so that the plain path needs no peft.
"""

import json
from dataclasses import dataclass
from pathlib import Path

from ..cli import UserError

ADAPTER_CONFIG = "adapter_config.json"


def _peft():
    try:
        import peft
    except ImportError:
        raise UserError("LoRA needs the peft library: pip install peft") from None
    return peft


@dataclass(frozen=True)
class LoraSettings:
    r: int
    alpha: int
    dropout: float
    target_modules: tuple[str, ...] = ()  # empty: peft's choice for the architecture


def target_modules(model_type: str, override: tuple[str, ...]) -> list[str]:
    if override:
        return list(override)
    from peft.utils import TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING as by_architecture

    if model_type not in by_architecture:
        raise UserError(
            f"no default LoRA target modules for model type {model_type!r}; name them with --lora-target-modules"
        )
    return list(by_architecture[model_type])


def add_lora(model, settings: LoraSettings, base_name: str):
    """The model with LoRA adapters on its target modules; only the adapters train.

    The adapter records its base model as an absolute path when the base is a local
    directory, so that the saved adapter loads from any working directory.
    """
    peft = _peft()
    config = peft.LoraConfig(
        task_type="CAUSAL_LM",
        r=settings.r,
        lora_alpha=settings.alpha,
        lora_dropout=settings.dropout,
        target_modules=target_modules(model.config.model_type, settings.target_modules),
    )
    try:
        wrapped = peft.get_peft_model(model, config)
    except ValueError as error:  # a named module that the model does not have
        raise UserError(f"--lora-target-modules: {error}") from None
    base = Path(base_name)
    # peft takes the name the base was loaded by, which may be relative to the working directory.
    wrapped.peft_config["default"].base_model_name_or_path = str(base.resolve()) if base.is_dir() else base_name
    return wrapped


def adapter_base(directory) -> str:
    """The base model an adapter directory names: a directory that exists, or a hub name.

    Adapters saved by older versions may name a relative directory; it is tried against the
    adapter's own directory too.
    """
    directory = Path(directory)
    try:
        config = json.loads((directory / ADAPTER_CONFIG).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError, RecursionError) as error:
        raise UserError(f"{directory / ADAPTER_CONFIG} cannot be read as JSON ({error})") from None
    base = config.get("base_model_name_or_path") if isinstance(config, dict) else None
    if not isinstance(base, str) or not base:
        raise UserError(f"{directory / ADAPTER_CONFIG} names no base model (base_model_name_or_path)")
    for candidate in (Path(base), directory / base):
        if candidate.is_dir():
            return str(candidate)
    if Path(base).is_absolute() or base.startswith((".", "~")):
        raise UserError(
            f"{directory} is a LoRA adapter for the base model in {base}, which does not exist (moved or deleted?); "
            f"put the base model back there or load a merged model"
        )
    return base


def apply_saved_adapter(base, directory):
    """A base model plus the adapter saved in directory, merged so that generation runs at plain-model speed."""
    return _peft().PeftModel.from_pretrained(base, directory).merge_and_unload()


def merge_into(base, trained):
    """The adapters of the trained peft model merged into another copy of its base.

    With a float32 base read anew, a model trained on a half-precision base (to save memory)
    is saved without passing that rounding on to the merged weights; the adapters themselves
    trained in float32 throughout.
    """
    peft = _peft()
    adapter_weights = {name: weight.float().cpu() for name, weight in peft.get_peft_model_state_dict(trained).items()}
    model = peft.get_peft_model(base, trained.peft_config["default"])
    peft.set_peft_model_state_dict(model, adapter_weights)
    return model.merge_and_unload()
