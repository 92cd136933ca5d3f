"""From trained weights to a model directory in its place, before anything else can go wrong.

The optimizer state goes first: it is most of training's memory, and saving and merging need
room of their own, so the end of a run never needs more than training did. The weights,
tokenizer (with its chat template), prompt style and a first report are written beside the
final place and renamed into it whole; only then may the evaluation run (evaluation.py),
which a Ctrl-C or an error can cut short without harm. Only the main process writes; under FSDP or DeepSpeed every
process joins the saving, which gathers the sharded weights.
"""

import time
from dataclasses import dataclass
from pathlib import Path

import torch

from ..answering.generation import GenerationSettings
from ..data.chat_template import chat_format
from ..data.prompt import PromptStyle, save_style
from ..models.hub import ModelSource
from ..models.lora import merge_into
from ..models.modeldir import StagedDirectory, load_model
from .checkpoints import remove_checkpoints
from .distributed import wait_for_everyone
from .report import write_report
from .trainer import release_training_state


@dataclass
class Publication:
    """What the model directory is made of, beyond the trained model itself."""

    model_dir: Path
    checkpoint_dir: Path
    style: PromptStyle
    base_source: ModelSource
    lora: bool = False
    save_adapter: bool = False
    half_precision_base: bool = False  # LoRA trained on a bf16/fp16 base (CUDA)
    trust_remote_code: bool = False


def ready_for_generation(model, tokenizer, style: PromptStyle) -> None:
    """Settings that the saved model carries into generate.py and any other tool: a plain
    transformers generate with the saved generation config searches as generate.py does and
    stops where every trained answer ends, at the end of its turn. (generate.py also stops a
    one-line answer at a newline, the tutorial's safety net for a model that has not learned
    to stop.)"""
    # The Trainer switched the KV cache off for training; saved that way, every generation
    # would recompute the whole sequence for each new token.
    model.config.use_cache = True
    settings = GenerationSettings()
    config = model.generation_config
    stops = chat_format(tokenizer, style).stop_ids(tokenizer)
    config.eos_token_id = stops[0] if len(stops) == 1 else stops
    config.pad_token_id = tokenizer.pad_token_id
    config.num_beams, config.max_new_tokens, config.do_sample = settings.num_beams, settings.max_new_tokens, False


def _merged(trainer, publication: Publication):
    """The adapters merged into plain weights that load without peft, always in float32."""
    if not publication.half_precision_base:
        return trainer.model.merge_and_unload()
    # The half-precision base saved memory in training only; the saved model gets the base's full weights.
    base = load_model(publication.base_source, dtype=torch.float32, trust_remote_code=publication.trust_remote_code)
    merged = merge_into(base, trainer.model)
    trainer.model.to("cpu")  # the trained copy leaves the GPU to the merged model that answers
    torch.cuda.empty_cache()
    return merged


def save_weights(trainer, tokenizer, staging: Path, publication: Publication, is_main: bool):
    """Write weights and tokenizer; return the model whose answers generate.py will give."""
    if not publication.lora or publication.save_adapter:
        ready_for_generation(trainer.model, tokenizer, publication.style)
        trainer.save_model(str(staging))  # on every process: FSDP and DeepSpeed gather the weights here
        if not publication.lora:
            return trainer.model
        if is_main:  # an adapter directory holds no model config; the generation settings travel anyway
            trainer.model.generation_config.save_pretrained(staging)
        return trainer.model.merge_and_unload()
    model = _merged(trainer, publication)
    ready_for_generation(model, tokenizer, publication.style)
    if is_main:
        model.save_pretrained(staging)
        tokenizer.save_pretrained(staging)
    return model


def publish_model(trainer, tokenizer, publication: Publication, report: dict):
    """Put the model directory in place with report; return the model as generate.py will answer
    with it, on the main process (None on the others)."""
    state = trainer.args.distributed_state
    is_main = trainer.args.process_index == 0
    release_training_state(trainer)
    target = StagedDirectory(publication.model_dir)
    if is_main:
        target.prepare()
    wait_for_everyone(state)
    started = time.perf_counter()
    trained = save_weights(trainer, tokenizer, target.staging, publication, is_main)
    report["seconds"]["saving"] = time.perf_counter() - started
    if is_main:
        save_style(target.staging, publication.style)
        write_report(target.staging, report)
        target.publish()
        remove_checkpoints(publication.checkpoint_dir)  # the finished model supersedes them
        print(f"Training finished. Wrote model to {publication.model_dir}", flush=True)
    wait_for_everyone(state)
    return trained if is_main else None
