"""From trained weights to a model directory: save, evaluate by generation, report, rename into place.

The optimizer state goes first: it is most of training's memory, and saving, merging and
evaluating need room of their own, so the end of a run never needs more than training did.
Only the main process writes; under FSDP or DeepSpeed every process joins the saving,
which gathers the sharded weights.
"""

import json
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

from ..answering.evaluation import evaluate, format_table
from ..answering.generation import Answerer, GenerationSettings
from ..cli import log
from ..data.instructions import Example
from ..data.prompt import PromptStyle, save_style
from ..models.hub import ModelSource
from ..models.lora import merge_into
from ..models.modeldir import StagedDirectory, load_model
from ..planning.device import choose_dtype
from ..planning.memory import GIB, measured_peak_bytes
from ..planning.precision import DECODING_SHAPE, bf16_decodes_faster, time_matmuls
from .distributed import is_sharded, wait_for_everyone
from .trainer import epoch_losses, release_training_state

REPORT_FILE = "training_report.json"


@dataclass
class Publication:
    """What the model directory is made of, beyond the trained model itself."""

    model_dir: Path
    checkpoint_dir: Path
    style: PromptStyle
    eval_examples: list[Example]
    base_source: ModelSource
    device: str
    lora: bool = False
    save_adapter: bool = False
    half_precision_base: bool = False  # LoRA trained on a bf16/fp16 base (CUDA)
    trust_remote_code: bool = False
    report: dict = field(default_factory=dict)  # run facts for training_report.json


def ready_for_generation(model, tokenizer) -> None:
    """Settings that the saved model carries into generate.py and any other tool."""
    # The Trainer switched the KV cache off for training; saved that way, every generation
    # would recompute the whole sequence for each new token.
    model.config.use_cache = True
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.pad_token_id = tokenizer.pad_token_id


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
        ready_for_generation(trainer.model, tokenizer)
        trainer.save_model(str(staging))  # on every process: FSDP and DeepSpeed gather the weights here
        if not publication.lora:
            return trainer.model
        if is_main:  # an adapter directory holds no model config; the generation settings travel anyway
            trainer.model.generation_config.save_pretrained(staging)
        return trainer.model.merge_and_unload()
    model = _merged(trainer, publication)
    ready_for_generation(model, tokenizer)
    if is_main:
        model.save_pretrained(staging)
        tokenizer.save_pretrained(staging)
    return model


def answering_model(model, device: str):
    """The saved model as generate.py loads it by default: same device, same dtype."""
    faster_in_bf16 = device == "cpu" and bf16_decodes_faster(time_matmuls(DECODING_SHAPE))
    return model.to(device=device, dtype=choose_dtype("auto", device, faster_in_bf16)).eval()


def write_report(staging: Path, trainer, evaluation, publication: Publication) -> None:
    report = {
        **publication.report,
        "peak_memory_gib": measured_peak_bytes(publication.device) / GIB,
        "global_step": trainer.state.global_step,
        "epochs": epoch_losses(trainer.state.log_history),
        "evaluation": evaluation.to_json() if evaluation is not None else None,
    }
    (staging / REPORT_FILE).write_text(json.dumps(report, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")


def publish_model(trainer, tokenizer, publication: Publication) -> None:
    state = trainer.args.distributed_state
    is_main = trainer.args.process_index == 0
    sharded = is_sharded(trainer)
    release_training_state(trainer)
    target = StagedDirectory(publication.model_dir)
    if is_main:
        target.prepare()
    wait_for_everyone(state)
    started = time.perf_counter()
    trained = save_weights(trainer, tokenizer, target.staging, publication, is_main)
    seconds = publication.report.setdefault("seconds", {})
    seconds["saving"] = time.perf_counter() - started
    if is_main:
        save_style(target.staging, publication.style)
        evaluation = None
        if sharded:
            # The other processes wait at the barrier and would never join the all-gathers
            # that generating with sharded weights needs.
            log(
                f"Notice: the weights were sharded across processes, so answers are not scored here; "
                f"score the saved model with: python generate.py --model-name {publication.model_dir} --eval FILE"
            )
        else:
            answerer = Answerer(
                answering_model(trained, publication.device), tokenizer, publication.style, GenerationSettings()
            )
            started = time.perf_counter()
            evaluation = evaluate(answerer, publication.eval_examples)
            seconds["answering"] = time.perf_counter() - started
            print(format_table(evaluation))
        write_report(target.staging, trainer, evaluation, publication)
        target.publish()
        shutil.rmtree(publication.checkpoint_dir, ignore_errors=True)  # the finished model supersedes them
        print(f"Training finished. Wrote model to {publication.model_dir}")
    wait_for_everyone(state)
