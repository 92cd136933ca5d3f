"""LoRA through peft: which modules get adapters, wrapping a model, loading a saved adapter.

peft is imported only here and only when LoRA is used, so that the plain path needs no peft.
"""

from dataclasses import dataclass

from .cli import UserError

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


def add_lora(model, settings: LoraSettings):
    """The model with LoRA adapters on its target modules; only the adapters train."""
    peft = _peft()
    config = peft.LoraConfig(
        task_type="CAUSAL_LM",
        r=settings.r,
        lora_alpha=settings.alpha,
        lora_dropout=settings.dropout,
        target_modules=target_modules(model.config.model_type, settings.target_modules),
    )
    try:
        return peft.get_peft_model(model, config)
    except ValueError as error:  # a named module that the model does not have
        raise UserError(f"--lora-target-modules: {error}") from None


def load_adapter_model(directory: str, *, dtype, trust_remote_code: bool):
    """Base model plus a saved adapter, merged so that generation runs at plain-model speed."""
    peft = _peft()
    model = peft.AutoPeftModelForCausalLM.from_pretrained(directory, dtype=dtype, trust_remote_code=trust_remote_code)
    return model.merge_and_unload()
