"""instruct_ger.py: fine-tune a causal LM on an instruction file with a completion-only loss.

The flow: file -> examples (sources) -> tokens -> Trainer (trainer) -> model directory
(publish). Under torchrun or accelerate launch every process trains; only the main process
prints, evaluates by generation and publishes the model directory.
"""

import argparse
import contextlib
import tempfile
import time
from pathlib import Path

import torch
from transformers import set_seed
from transformers.utils import logging as hf_logging

from .checkpoints import DEFAULT_INTERVAL_MINUTES, CheckpointPolicy, checkpoint_to_resume
from .cli import (
    HelpFormatter,
    StoppedEarly,
    UserError,
    dropout_rate,
    log,
    non_negative_float,
    positive_float,
    positive_int,
)
from .device import base_weights_dtype, check_mixed_precision, resolve_device
from .distributed import check_process_count, is_sharded, local_process_count
from .hub import ModelSource, resolve_model_source
from .instructions import InstructionSet
from .interrupt import StopOnCtrlC, resume_command
from .lora import LoraSettings, add_lora
from .memory import GIB
from .modeldir import check_model_directory, load_config, load_model, load_tokenizer
from .plan import format_plan, plan_run
from .precision import warn_if_bf16_trains_slower
from .preflight import check_bitsandbytes, check_disk, check_memory
from .prompt import DEFAULT_INPUT_TEMPLATE, DEFAULT_TEMPLATE, PromptStyle
from .publish import Publication, publish_model
from .sources import read_instructions
from .tiny import TINY_MODEL_NAME, TINY_PRESET, build_tiny_bloom
from .tokens import encode_examples
from .trainer import OPTIMIZERS, build_trainer, training_arguments

# The tutorial's settings.
DEFAULTS = {
    "input_file": "instruct_ger_bsp_1.txt",
    "model_name": "malteos/bloom-1b5-clp-german",
    "output_dir": "instruct_ger",
    "output_model": "instruct_ger_bsp_1_1b5_ep4",
    "epochs": 4,
    "learning_rate": 2e-5,
}
TINY_DEFAULTS = {**DEFAULTS, **TINY_PRESET}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description="Fine-tune a causal language model on an instruction file: instruction#answer per line "
        "(.txt), or Alpaca-style records in .jsonl, .json, .csv or .tsv.",
        epilog="Example: python instruct_ger.py --model-name tiny-bloom  (offline, about a minute on a CPU)",
        formatter_class=HelpFormatter,
    )
    parser.add_argument("--input-file", default=DEFAULTS["input_file"], help="instruction file")
    parser.add_argument(
        "--eval-file", help="evaluation examples from this file (any format) instead of the input file's own"
    )
    parser.add_argument(
        "--model-name",
        default=DEFAULTS["model_name"],
        help=f"base model: hub name or local directory (default: %(default)s); '{TINY_MODEL_NAME}' builds a "
        f"small BLOOM from scratch, offline, with its own defaults ({TINY_PRESET['epochs']} epochs, learning "
        f"rate {TINY_PRESET['learning_rate']}, output model {TINY_PRESET['output_model']})",
    )
    parser.add_argument("--output-dir", default=DEFAULTS["output_dir"], help="folder for models and checkpoints")
    parser.add_argument(
        "--output-model", help=f"name of the model directory in --output-dir (default: {DEFAULTS['output_model']})"
    )
    parser.add_argument("--epochs", type=positive_int, help=f"training epochs (default: {DEFAULTS['epochs']})")
    parser.add_argument(
        "--learning-rate", type=positive_float, help=f"peak learning rate (default: {DEFAULTS['learning_rate']})"
    )
    parser.add_argument("--weight-decay", type=non_negative_float, default=0.01, help="AdamW weight decay")
    parser.add_argument("--batch-size", type=positive_int, default=8, help="examples per step and process")
    parser.add_argument(
        "--gradient-accumulation-steps", type=positive_int, default=1, help="batches summed into one optimizer step"
    )
    parser.add_argument(
        "--optim",
        choices=["auto", *OPTIMIZERS],
        default="auto",
        help="optimizer (the Trainer's names); auto: AdamW, or Adafactor where AdamW's state would not fit in memory; "
        "adamw_bnb_8bit needs bitsandbytes and CUDA",
    )
    parser.add_argument(
        "--no-group-by-length",
        dest="group_by_length",
        action="store_false",
        help="shuffle freely instead of batching examples of similar length (more padding)",
    )
    parser.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto", help="auto: CUDA if present")
    precision = parser.add_mutually_exclusive_group()
    precision.add_argument("--bf16", action="store_true", help="bfloat16 mixed precision (CUDA, or a CPU)")
    precision.add_argument("--fp16", action="store_true", help="float16 mixed precision (CUDA only)")
    parser.add_argument(
        "--gradient-checkpointing", action="store_true", help="recompute activations: less memory, slower steps"
    )
    parser.add_argument("--seed", type=int, default=42, help="random seed (data order, initialisation)")
    parser.add_argument(
        "--max-length", type=positive_int, default=512, help="tokens per example; longer prompts are cut at the front"
    )
    parser.add_argument(
        "--prompt-template",
        default=DEFAULT_TEMPLATE,
        help="prompt with {instruction}; the answer follows it (default: %(default)r)",
    )
    parser.add_argument(
        "--prompt-template-with-input",
        default=DEFAULT_INPUT_TEMPLATE,
        help="prompt for examples with an input, with {instruction} and {input} (default: %(default)r)",
    )
    checkpoints = parser.add_argument_group("checkpoints")
    checkpoints.add_argument(
        "--checkpoint-minutes",
        type=non_negative_float,
        default=DEFAULT_INTERVAL_MINUTES,
        help="write a checkpoint at the end of an epoch once this many minutes have passed since the last one; "
        "0: after every epoch; never after the last epoch",
    )
    checkpoints.add_argument(
        "--no-checkpoints", action="store_true", help="no checkpoints between epochs (Ctrl-C still writes one)"
    )
    checkpoints.add_argument("--resume", action="store_true", help="continue from the latest complete checkpoint")
    parser.add_argument(
        "--dry-run",
        action="store_true",
        help="check the file, tokenize, print the plan (steps, memory, disk, time) and stop; loads no weights",
    )
    parser.add_argument(
        "--ignore-preflight",
        action="store_true",
        help="train even where the memory or disk estimate says the run will not fit",
    )
    parser.add_argument(
        "--trust-remote-code", action="store_true", help="allow model code from the hub (only for models you trust)"
    )
    lora = parser.add_argument_group("LoRA (needs peft)")
    lora.add_argument("--lora", action="store_true", help="train low-rank adapters instead of all weights")
    lora.add_argument("--lora-r", type=positive_int, default=16, help="adapter rank")
    lora.add_argument("--lora-alpha", type=positive_int, default=32, help="adapter scale numerator (alpha / r)")
    lora.add_argument("--lora-dropout", type=dropout_rate, default=0.05, help="dropout on the adapter input")
    lora.add_argument(
        "--lora-target-modules",
        nargs="+",
        default=[],
        metavar="NAME",
        help="module names to adapt (default: peft's choice for the architecture, e.g. query_key_value for BLOOM)",
    )
    lora.add_argument(
        "--save-adapter",
        action="store_true",
        help="save the adapter alone (small; needs the base model to load) instead of merging it into the weights",
    )
    return parser


def resolve_settings(args: argparse.Namespace) -> argparse.Namespace:
    """Fill the flags left unset from the tiny-bloom preset or the tutorial's defaults; check the rest."""
    tiny = args.model_name == TINY_MODEL_NAME
    defaults = TINY_DEFAULTS if tiny else DEFAULTS
    for name in ("output_model", "epochs", "learning_rate"):
        if getattr(args, name) is None:
            setattr(args, name, defaults[name])
    if (args.save_adapter or args.lora_target_modules) and not args.lora:
        raise UserError("--save-adapter and --lora-target-modules go with --lora")
    if args.save_adapter and tiny:
        raise UserError(f"--save-adapter needs a base model that outlives the run; {TINY_MODEL_NAME} is built anew")
    if args.optim == "adamw_bnb_8bit":
        check_bitsandbytes(resolve_device(args.device))
    if not tiny:
        check_model_directory(args.model_name)
    return args


def prompt_style(args, instructions: InstructionSet) -> PromptStyle:
    multiline = any("\n" in example.answer for example in instructions.train)
    return PromptStyle(args.prompt_template, args.prompt_template_with_input, multiline)


def print_overview(instructions: InstructionSet, style: PromptStyle) -> None:
    first_train, first_eval = instructions.train[0], instructions.eval[0]
    print(f"First training sentence: {style.format(first_train.instruction, first_train.input)}{first_train.answer}")
    print(f"First evaluation sentence: {style.format(first_eval.instruction, first_eval.input)}{first_eval.answer}")
    print(f"#train: {len(instructions.train)}")
    print(f"#eval: {len(instructions.eval)}")
    if instructions.eval_is_train:
        log(
            "Notice: no evaluation examples (an _EVAL_ marker, split 'eval' records or --eval-file), "
            "so the training examples are also used for evaluation."
        )


def model_source(args, instructions: InstructionSet, style: PromptStyle, stack: contextlib.ExitStack) -> ModelSource:
    """Where the base model loads from. tiny-bloom is built by every process for itself, from the
    same texts and seed, so that processes on machines without a shared folder get the same model."""
    if args.model_name != TINY_MODEL_NAME:
        return resolve_model_source(args.model_name)
    texts = [style.format(e.instruction, e.input) + e.answer for e in instructions.train + instructions.eval]
    directory = stack.enter_context(tempfile.TemporaryDirectory(prefix=f"{TINY_MODEL_NAME}-"))
    return ModelSource(str(build_tiny_bloom(texts, directory, seed=args.seed)))


def check_device(args) -> str:
    device = resolve_device(args.device)
    check_process_count(device, local_process_count(), torch.cuda.device_count())
    cuda_bf16 = device == "cuda" and torch.cuda.is_bf16_supported()
    check_mixed_precision(device, bf16=args.bf16, fp16=args.fp16, cuda_bf16_supported=cuda_bf16)
    return device


def encode(tokenizer, style: PromptStyle, instructions: InstructionSet, args):
    """Training and evaluation examples as token ids, and how many prompts were cut to fit."""
    train_set = encode_examples(tokenizer, style, instructions.train, args.max_length, args.input_file)
    if instructions.eval_is_train:  # encoded (and counted as truncated) once
        return train_set, train_set, train_set.truncated
    eval_path = args.eval_file or args.input_file
    eval_set = encode_examples(tokenizer, style, instructions.eval, args.max_length, eval_path)
    return train_set, eval_set, train_set.truncated + eval_set.truncated


def lora_settings(args) -> LoraSettings | None:
    if not args.lora:
        return None
    return LoraSettings(args.lora_r, args.lora_alpha, args.lora_dropout, tuple(args.lora_target_modules))


def print_start(instructions, style, plan, args, truncated: int, optimizer_notice: str | None, device: str) -> None:
    print_overview(instructions, style)
    padding = 1 - plan.real_tokens / plan.padded_tokens
    grouping = "batches grouped by length" if args.group_by_length else "batches shuffled freely"
    print(f"Padding: {padding:.1%} of the positions in training batches ({grouping})")
    if truncated:
        log(f"Warning: {truncated} prompt(s) longer than --max-length {args.max_length} were cut at the front.")
    if optimizer_notice:
        log(optimizer_notice)
    if args.bf16 and device == "cpu":
        warn_if_bf16_trains_slower()


def load_trainable_model(source: ModelSource, args, device: str, lora: LoraSettings | None):
    """The base model in its training dtype, with LoRA adapters where asked for."""
    base_dtype = base_weights_dtype(device, lora=args.lora, bf16=args.bf16, fp16=args.fp16)
    model = load_model(source, dtype=base_dtype, trust_remote_code=args.trust_remote_code)
    if lora is not None:
        set_seed(args.seed)  # the adapters' random init, before the Trainer seeds anything
        model = add_lora(model, lora, args.model_name)
    return model, base_dtype


def train(trainer, resume_from: Path | None, checkpoint_dir: Path, argv) -> dict:
    """trainer.train(), with Ctrl-C writing a checkpoint in a single process; returns its metrics."""
    stop = next(callback for callback in trainer.callback_handler.callbacks if isinstance(callback, StopOnCtrlC))
    # Ctrl-C reaches every process of a distributed run, and its launcher stops them itself.
    ctrl_c = stop if trainer.args.world_size == 1 else contextlib.nullcontext()
    with ctrl_c:
        metrics = trainer.train(resume_from_checkpoint=str(resume_from) if resume_from else None).metrics
    if stop.checkpoint_step is not None:
        checkpoint = checkpoint_dir / f"checkpoint-{stop.checkpoint_step}"
        raise StoppedEarly(
            f"Interrupted at step {stop.checkpoint_step} of {trainer.state.max_steps}; checkpoint written to "
            f"{checkpoint}. Continue with: {resume_command(argv)}"
        )
    return metrics


def run(args: argparse.Namespace, callbacks=(), argv: list[str] | None = None) -> Path | None:
    """Train as the parsed flags say and return the written model directory (None for --dry-run)."""
    args = resolve_settings(args)
    instructions = read_instructions(args.input_file, args.eval_file)
    style = prompt_style(args, instructions)
    device = check_device(args)
    model_dir = Path(args.output_dir) / args.output_model
    checkpoint_dir = Path(args.output_dir) / f"checkpoints-{args.output_model}"

    with contextlib.ExitStack() as stack:
        source = model_source(args, instructions, style, stack)
        tokenizer = load_tokenizer(source, trust_remote_code=args.trust_remote_code)
        train_set, eval_set, truncated = encode(tokenizer, style, instructions, args)
        lora = lora_settings(args)
        config = load_config(source, trust_remote_code=args.trust_remote_code)
        processes = local_process_count()
        plan, optimizer_notice = plan_run(args, config, instructions, train_set, device, processes, lora)
        if args.dry_run:
            print_overview(instructions, style)
            if optimizer_notice:
                log(optimizer_notice)
            print(format_plan(plan, args.epochs))
            print("Dry run: no weights loaded, nothing written.")
            return None
        if not args.ignore_preflight:
            check_memory(plan.memory, plan.available_memory, plan.memory_what, processes)
            check_disk(plan.disk_bytes, plan.free_disk, args.output_dir)

        # Joins the process group, if any.
        training_args = training_arguments(args, checkpoint_dir, device, plan.memory.optimizer)
        is_main = training_args.process_index == 0
        if is_main:
            print_start(instructions, style, plan, args, truncated, optimizer_notice, device)
        resume_from = checkpoint_to_resume(checkpoint_dir, args.resume, args.epochs, is_main)
        if is_main:
            print(f"Model: {args.model_name}")
        started = time.perf_counter()
        model, base_dtype = load_trainable_model(source, args, device, lora)
        loading_seconds = time.perf_counter() - started

        policy = CheckpointPolicy(None if args.no_checkpoints else args.checkpoint_minutes)
        trainer = build_trainer(
            model, tokenizer, training_args, train_set, eval_set, args.group_by_length,
            [policy, StopOnCtrlC(), *callbacks],
        )  # fmt: skip
        if is_sharded(trainer) and args.lora and not args.save_adapter:
            raise UserError(
                "with FSDP or DeepSpeed ZeRO-3 the weights are sharded and cannot be merged: add --save-adapter"
            )
        if is_main:
            print("Start training ...")
        metrics = train(trainer, resume_from, checkpoint_dir, argv)

        publication = Publication(
            model_dir=model_dir,
            checkpoint_dir=checkpoint_dir,
            style=style,
            eval_examples=instructions.eval,
            base_source=source,
            device=device,
            lora=args.lora,
            save_adapter=args.save_adapter,
            half_precision_base=base_dtype != torch.float32,
            trust_remote_code=args.trust_remote_code,
            report={
                "base_model": args.model_name,
                "input_file": str(args.input_file),
                "eval_file": str(args.eval_file) if args.eval_file else None,
                "optimizer": plan.memory.optimizer,
                "estimated_peak_memory_gib": plan.peak_bytes / GIB,
                "padding_share": 1 - plan.real_tokens / plan.padded_tokens,
                "group_by_length": args.group_by_length,
                "seconds": {
                    "loading": loading_seconds,
                    "training": metrics["train_runtime"],
                    "checkpoints": policy.seconds_writing,
                    "evaluation_loss": sum(entry.get("eval_runtime", 0) for entry in trainer.state.log_history),
                },
            },
        )
        publish_model(trainer, tokenizer, publication)
    return model_dir


def main(argv=None) -> int:
    # Loading and writing weights would draw a bar per checkpoint; the Trainer's own bar stays.
    hf_logging.disable_progress_bar()
    run(build_parser().parse_args(argv), argv=argv)
    return 0
