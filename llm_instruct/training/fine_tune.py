"""The training itself: examples -> tokens -> plan -> Trainer -> model directory.

The flow: examples (from train.py, already checked) -> tokens -> plan and preflight (plan,
preflight) -> Trainer (trainer) -> model directory (publish). Under torchrun or accelerate
launch every process trains; only the main process prints, evaluates by generation and
publishes the model directory.
"""

import argparse
import contextlib
import tempfile
import time
from pathlib import Path

import torch
from transformers import set_seed
from transformers.utils import logging as hf_logging

from ..cli import StoppedEarly, UserError, log
from ..data.batching import choose_grouping
from ..data.chat_template import chat_format, conversation_messages, training_chat_template
from ..data.instructions import InstructionSet
from ..data.prompt import DEFAULT_INPUT_TEMPLATE, DEFAULT_TEMPLATE, PromptStyle
from ..data.tokens import encode_examples
from ..models.hub import ModelSource, resolve_model_source
from ..models.lora import LoraSettings, add_lora
from ..models.modeldir import load_config, load_model, load_tokenizer
from ..models.tiny import TINY_MODEL_NAME, build_tiny_bloom
from ..planning.device import MIXED_PRECISIONS, base_weights_dtype, check_mixed_precision, resolve_device
from ..planning.memory import GIB, measured_peak_bytes
from ..planning.plan import EVALUATION_SHARE, format_plan, plan_run
from ..planning.precision import training_precision
from ..planning.preflight import check_bitsandbytes, enforce
from .checkpoints import CheckpointPolicy, checkpoint_to_resume
from .distributed import check_process_count, is_sharded, local_process_count
from .fused import fuse_for_training
from .interrupt import StopOnCtrlC, WhileSaving, resume_command
from .mixed_precision import recast_linears
from .outputs import checkpoint_directory, model_directory
from .publish import Publication, publish_model
from .report import TrainingClock, epoch_losses
from .scoring import answerer_for, evaluation_plan, score_command, score_model
from .trainer import build_trainer, training_arguments


def prompt_style(args, instructions: InstructionSet) -> PromptStyle:
    multiline = any("\n" in example.answer for example in instructions.train)
    return PromptStyle(args.prompt_template, args.prompt_template_with_input, multiline)


def base_template_wanted(args) -> bool:
    """Whether a base model's own chat template may be used: not where a template is asked for."""
    own = (args.prompt_template, args.prompt_template_with_input) != (DEFAULT_TEMPLATE, DEFAULT_INPUT_TEMPLATE)
    return not (args.tutorial_template or own)


def print_overview(instructions: InstructionSet, tokenizer, style: PromptStyle) -> None:
    chat = chat_format(tokenizer, style)
    first_train, first_eval = instructions.train[0], instructions.eval[0]
    print(
        f"First training sentence: {chat.prompt_text(tokenizer, conversation_messages(first_train))}{first_train.answer}"
    )
    print(
        f"First evaluation sentence: {chat.prompt_text(tokenizer, conversation_messages(first_eval))}{first_eval.answer}"
    )
    print(f"#train: {len(instructions.train)}")
    print(f"#eval: {len(instructions.eval)}")
    if instructions.eval_is_train:
        log(
            "Notice: no evaluation split (an _EVAL_ marker, split 'eval' records or --eval-file), so no evaluation "
            f"loss; after training, training examples drawn at random are answered for at most "
            f"{EVALUATION_SHARE:.0%} of the training time."
        )


def model_source(args, instructions: InstructionSet, style: PromptStyle, stack: contextlib.ExitStack) -> ModelSource:
    """Where the base model loads from. tiny-bloom is built by every process for itself, from the
    same texts and seed, so that processes on machines without a shared folder get the same model."""
    if args.model_name != TINY_MODEL_NAME:
        return resolve_model_source(args.model_name)
    texts = [style.format(e.instruction, e.input) + e.answer for e in instructions.train + instructions.eval]
    directory = stack.enter_context(tempfile.TemporaryDirectory(prefix=f"{TINY_MODEL_NAME}-"))
    return ModelSource(str(build_tiny_bloom(texts, directory, seed=args.seed)))


def check_device(args) -> tuple[str, str | None]:
    """The device, and the precision --precision asks for on it, with a line saying why where chosen."""
    device = resolve_device(args.device)
    if args.optim == "adamw_bnb_8bit":
        check_bitsandbytes(device)
    check_process_count(device, local_process_count(), torch.cuda.device_count())
    cuda_bf16 = device == "cuda" and torch.cuda.is_bf16_supported()
    check_mixed_precision(device, args.precision, cuda_bf16_supported=cuda_bf16)
    args.precision, precision_notice = training_precision(args.precision, device, cuda_bf16)
    return device, precision_notice


def encode(tokenizer, style: PromptStyle, instructions: InstructionSet, args):
    """Training and evaluation examples as token ids (no evaluation set without an evaluation
    split), and how many prompts were cut to fit."""
    train_set = encode_examples(tokenizer, style, instructions.train, args.max_length, args.input_file)
    if instructions.eval_is_train:
        return train_set, None, train_set.truncated
    eval_path = args.eval_file or args.input_file
    eval_set = encode_examples(tokenizer, style, instructions.eval, args.max_length, eval_path)
    return train_set, eval_set, train_set.truncated + eval_set.truncated


def batch_grouping(args, lengths: list[int]) -> tuple[bool, str]:
    """Grouping by length as asked, or as choose_grouping decides for this data."""
    if args.group_by_length is None:
        return choose_grouping(lengths, args.batch_size, args.seed, args.epochs)
    if args.group_by_length:
        return True, "batches grouped by length, as asked"
    return False, "batches shuffled freely, as asked"


def lora_settings(args) -> LoraSettings | None:
    if not args.lora:
        return None
    return LoraSettings(args.lora_r, args.lora_alpha, args.lora_dropout, tuple(args.lora_target_modules))


def print_start(instructions, tokenizer, style, plan, args, truncated: int, optimizer_notice, precision_notice) -> None:
    print_overview(instructions, tokenizer, style)
    print(f"Padding: {plan.padding_share:.1%} of the positions in training batches ({args.grouping})")
    if truncated:
        log(f"Warning: {truncated} prompt(s) longer than --max-length {args.max_length} were cut at the front.")
    for notice in (optimizer_notice, precision_notice):
        if notice:
            log(notice)


def load_trainable_model(source: ModelSource, args, device: str, lora: LoraSettings | None, single_process: bool):
    """The base model in its training dtype, with LoRA adapters where asked for."""
    base_dtype = base_weights_dtype(device, lora=args.lora, precision=args.precision)
    model = load_model(source, dtype=base_dtype, trust_remote_code=args.trust_remote_code)
    fuse_for_training(model, single_process=single_process)
    if lora is not None:
        set_seed(args.seed)  # the adapters' random init, before the Trainer seeds anything
        model = add_lora(model, lora, args.model_name)
    return model, base_dtype


def train(trainer, stop: StopOnCtrlC, resume_from: Path | None, checkpoint_dir: Path, argv) -> None:
    """trainer.train(), with Ctrl-C writing a checkpoint in a single process.

    stop: the trainer's Ctrl-C callback.
    """
    with stop if single_process(trainer) else contextlib.nullcontext():
        trainer.train(resume_from_checkpoint=str(resume_from) if resume_from else None)
    if stop.checkpoint_step is not None:
        checkpoint = checkpoint_dir / f"checkpoint-{stop.checkpoint_step}"
        raise StoppedEarly(
            f"Interrupted at step {stop.checkpoint_step} of {trainer.state.max_steps}; checkpoint written to "
            f"{checkpoint}. Continue with: {resume_command(argv)}"
        )


def single_process(trainer) -> bool:
    """Ctrl-C reaches every process of a distributed run, and its launcher stops them itself."""
    return trainer.args.world_size == 1


def run_report(args, plan, trainer, clock: TrainingClock, policy: CheckpointPolicy, loading_seconds: float) -> dict:
    """training_report.json as the training left it; saving and evaluation add to it."""
    return {
        "base_model": args.model_name,
        "input_file": str(args.input_file),
        "eval_file": str(args.eval_file) if args.eval_file else None,
        "optimizer": plan.memory.optimizer,
        "precision": args.precision,
        "estimated_peak_memory_gib": plan.peak_bytes / GIB,
        "peak_memory_gib": measured_peak_bytes(plan.memory.device) / GIB,
        "padding_share": plan.padding_share,
        "group_by_length": args.group_by_length,
        "global_step": trainer.state.global_step,
        "epochs": epoch_losses(trainer.state.log_history, trainer.state.max_steps // args.epochs),
        "seconds": {
            "loading": loading_seconds,
            "training": clock.seconds,
            "checkpoints": policy.seconds_writing,
            "evaluation_loss": sum(entry.get("eval_runtime", 0) for entry in trainer.state.log_history),
        },
        "evaluation": None,
    }


def fine_tune(args: argparse.Namespace, instructions: InstructionSet, callbacks=(), argv=None) -> Path | None:
    """Train as the resolved flags say; return the written model directory (None for --dry-run)."""
    # Loading and writing weights would draw a bar per checkpoint; the Trainer's own bar stays.
    hf_logging.disable_progress_bar()
    style = prompt_style(args, instructions)
    device, precision_notice = check_device(args)
    model_dir, checkpoint_dir = model_directory(args), checkpoint_directory(args)

    with contextlib.ExitStack() as stack:
        source = model_source(args, instructions, style, stack)
        tokenizer = load_tokenizer(source, trust_remote_code=args.trust_remote_code)
        # Every prompt renders through this template, which the model directory then carries.
        tokenizer.chat_template = training_chat_template(tokenizer, style, use_base=base_template_wanted(args))
        train_set, eval_set, truncated = encode(tokenizer, style, instructions, args)
        args.group_by_length, args.grouping = batch_grouping(args, train_set.lengths)
        lora = lora_settings(args)
        config = load_config(source, trust_remote_code=args.trust_remote_code)
        plan, optimizer_notice = plan_run(args, config, instructions, train_set, device, local_process_count(), lora)
        if args.dry_run:
            print_overview(instructions, tokenizer, style)
            if precision_notice:
                log(precision_notice)
            print(format_plan(plan, optimizer_notice))
            print("Dry run: no weights loaded, nothing written.")
            return None
        if not args.ignore_preflight:
            enforce(plan.memory_verdict)
            enforce(plan.disk_verdict)

        # Joins the process group, if any.
        training_args = training_arguments(args, checkpoint_dir, device, plan.memory.optimizer, eval_set is not None)
        is_main = training_args.process_index == 0
        if is_main:
            print_start(instructions, tokenizer, style, plan, args, truncated, optimizer_notice, precision_notice)
        resume_from = checkpoint_to_resume(checkpoint_dir, args.resume, args.epochs, is_main, lora)
        if is_main:
            print(f"Model: {args.model_name}")
        started = time.perf_counter()
        model, base_dtype = load_trainable_model(source, args, device, lora, training_args.world_size == 1)
        loading_seconds = time.perf_counter() - started

        policy = CheckpointPolicy(None if args.no_checkpoints else args.checkpoint_minutes)
        stop, clock = StopOnCtrlC(), TrainingClock()
        trainer = build_trainer(
            model, tokenizer, training_args, train_set, eval_set, args.group_by_length,
            [policy, stop, *callbacks, clock],  # the clock after the callbacks that decide on checkpoints
        )  # fmt: skip
        sharded = is_sharded(trainer)
        if args.precision in MIXED_PRECISIONS and not sharded:  # sharded weights are gathered and freed per layer
            recast_linears(trainer.model)
        if sharded and args.lora and not args.save_adapter:
            raise UserError(
                "with FSDP or DeepSpeed ZeRO-3 the weights are sharded and cannot be merged: add --save-adapter"
            )
        if is_main:
            print("Start training ...")
        train(trainer, stop, resume_from, checkpoint_dir, argv)

        publication = Publication(
            model_dir=model_dir,
            checkpoint_dir=checkpoint_dir,
            style=style,
            base_source=source,
            lora=args.lora,
            save_adapter=args.save_adapter,
            half_precision_base=base_dtype != torch.float32,
            trust_remote_code=args.trust_remote_code,
        )
        report = run_report(args, plan, trainer, clock, policy, loading_seconds)
        with WhileSaving() if single_process(trainer) else contextlib.nullcontext() as saving:
            trained = publish_model(trainer, tokenizer, publication, report)
        if not is_main:
            return model_dir
        evaluation = evaluation_plan(instructions, args.input_file, args.eval_file, args.seed)
        if stop.requested or (saving is not None and saving.requested):
            raise StoppedEarly(
                f"Interrupted after training; the model is saved in {model_dir}, its evaluation skipped. "
                f"Score it with: {score_command(model_dir, evaluation)}"
            )
        if sharded:
            # The other processes have finished and would never join the all-gathers that
            # generating with sharded weights needs.
            log(
                f"Notice: the weights were sharded across processes, so answers are not scored here; "
                f"score the saved model with: {score_command(model_dir, evaluation)}"
            )
            return model_dir
        score_model(answerer_for(trained, tokenizer, style, device), evaluation, clock.seconds, report, model_dir)
    return model_dir
