"""instruct_ger.py: fine-tune a causal LM on an instruction file with a completion-only loss."""

import argparse
import json
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import torch
from transformers import Trainer, TrainingArguments
from transformers.trainer_utils import get_last_checkpoint

from .cli import UserError, log, non_negative_float, positive_float, positive_int
from .device import resolve_device
from .evaluation import evaluate, format_table
from .generation import Answerer, GenerationSettings
from .instructions import InstructionSet, parse_instruction_file
from .modeldir import atomic_directory, load_tokenizer_and_model
from .prompt import DEFAULT_TEMPLATE, format_prompt, save_template, validate_template
from .tiny import TINY_MODEL_NAME, TINY_PRESET, build_tiny_bloom
from .tokens import CompletionOnlyCollator, encode_examples

# The tutorial's settings.
DEFAULTS = {
    "input_file": "instruct_ger_bsp_1.txt",
    "model_name": "malteos/bloom-1b5-clp-german",
    "output_dir": "instruct_ger",
    "output_model": "instruct_ger_bsp_1_1b5_ep4",
    "epochs": 4,
    "learning_rate": 2e-5,
}
REPORT_FILE = "training_report.json"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description="Fine-tune a causal language model on an instruction file (instruction#answer per line).",
        epilog="Example: python instruct_ger.py --model-name tiny-bloom  (offline, about a minute on a CPU)",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--input-file", default=DEFAULTS["input_file"], help="instruction file")
    parser.add_argument(
        "--model-name",
        default=DEFAULTS["model_name"],
        help=f"base model: hub name or local directory; '{TINY_MODEL_NAME}' builds a small BLOOM from "
        f"scratch, offline (its own defaults: {TINY_PRESET['epochs']} epochs, learning rate "
        f"{TINY_PRESET['learning_rate']}, output model instruct_ger_bsp_1_tiny)",
    )
    parser.add_argument("--output-dir", default=DEFAULTS["output_dir"], help="folder for models and checkpoints")
    parser.add_argument(
        "--output-model", help=f"name of the model directory in --output-dir [default: {DEFAULTS['output_model']}]"
    )
    parser.add_argument("--epochs", type=positive_int, help=f"training epochs [default: {DEFAULTS['epochs']}]")
    parser.add_argument(
        "--learning-rate", type=positive_float, help=f"peak learning rate [default: {DEFAULTS['learning_rate']}]"
    )
    parser.add_argument("--weight-decay", type=non_negative_float, default=0.01, help="AdamW weight decay")
    parser.add_argument("--batch-size", type=positive_int, default=8, help="examples per step")
    parser.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto", help="auto: CUDA if present")
    parser.add_argument("--seed", type=int, default=42, help="random seed (data order, initialisation)")
    parser.add_argument(
        "--max-length", type=positive_int, default=512, help="tokens per example; longer prompts are cut at the front"
    )
    parser.add_argument(
        "--prompt-template", default=DEFAULT_TEMPLATE, help="prompt with {instruction}; the answer follows it"
    )
    parser.add_argument("--resume", action="store_true", help="continue from the latest checkpoint of this model")
    parser.add_argument(
        "--trust-remote-code", action="store_true", help="allow model code from the hub (only for models you trust)"
    )
    return parser


@dataclass(frozen=True)
class RunPaths:
    model_dir: Path
    checkpoint_dir: Path


def resolve_settings(args: argparse.Namespace) -> argparse.Namespace:
    """Fill the flags left unset from the tiny-bloom preset or the tutorial's defaults."""
    tiny = args.model_name == TINY_MODEL_NAME
    defaults = {**DEFAULTS, **TINY_PRESET, "output_model": "instruct_ger_bsp_1_tiny"} if tiny else DEFAULTS
    for name in ("output_model", "epochs", "learning_rate"):
        if getattr(args, name) is None:
            setattr(args, name, defaults[name])
    validate_template(args.prompt_template)
    return args


def print_overview(instructions: InstructionSet, template: str) -> None:
    first_train, first_eval = instructions.train[0], instructions.eval[0]
    print(f"First training sentence: {format_prompt(template, first_train.instruction)}{first_train.answer}")
    print(f"First evaluation sentence: {format_prompt(template, first_eval.instruction)}{first_eval.answer}")
    print(f"#train: {len(instructions.train)}")
    print(f"#eval: {len(instructions.eval)}")
    if instructions.eval_is_train:
        log("Notice: no _EVAL_ marker in the file, so the training lines are also used for evaluation.")


def checkpoint_to_resume(args, checkpoint_dir: Path) -> str | None:
    latest = get_last_checkpoint(str(checkpoint_dir)) if checkpoint_dir.is_dir() else None
    if args.resume and latest is None:
        raise UserError(f"--resume: no checkpoint in {checkpoint_dir}; run once without --resume")
    if not args.resume and latest is not None:
        log(f"Notice: {latest} is left from an interrupted run; starting over (pass --resume to continue it).")
    return latest if args.resume else None


def load_base(args, instructions: InstructionSet, workdir: Path):
    print(f"Model: {args.model_name}")
    name = args.model_name
    if name == TINY_MODEL_NAME:
        texts = [
            format_prompt(args.prompt_template, e.instruction) + e.answer
            for e in instructions.train + instructions.eval
        ]
        name = str(build_tiny_bloom(texts, workdir / TINY_MODEL_NAME, seed=args.seed))
    # fp32 master weights: training in half precision on the CPU is slow and loses updates.
    return load_tokenizer_and_model(name, dtype=torch.float32, trust_remote_code=args.trust_remote_code)


def training_arguments(args, checkpoint_dir: Path, device: str) -> TrainingArguments:
    return TrainingArguments(
        output_dir=str(checkpoint_dir),
        num_train_epochs=args.epochs,
        learning_rate=args.learning_rate,
        weight_decay=args.weight_decay,
        per_device_train_batch_size=args.batch_size,
        per_device_eval_batch_size=args.batch_size,
        logging_strategy="epoch",
        eval_strategy="epoch",
        save_strategy="epoch",
        save_total_limit=1,  # a 1.5B checkpoint with optimizer state is about 18 GB
        seed=args.seed,
        use_cpu=device == "cpu",
        remove_unused_columns=False,  # the collator needs prompt_length
        report_to="none",
    )


def epoch_losses(log_history: list[dict]) -> list[dict]:
    by_epoch: dict[int, dict] = {}
    for entry in log_history:
        for key in ("loss", "eval_loss"):
            if key in entry:
                by_epoch.setdefault(round(entry["epoch"]), {})[key] = entry[key]
    return [{"epoch": epoch, **losses} for epoch, losses in sorted(by_epoch.items())]


def run(args: argparse.Namespace, callbacks=()) -> Path:
    """Train as the parsed flags say and return the written model directory."""
    args = resolve_settings(args)
    instructions = parse_instruction_file(args.input_file)
    print_overview(instructions, args.prompt_template)
    device = resolve_device(args.device)
    paths = RunPaths(
        model_dir=Path(args.output_dir) / args.output_model,
        checkpoint_dir=Path(args.output_dir) / f"checkpoints-{args.output_model}",
    )
    resume_from = checkpoint_to_resume(args, paths.checkpoint_dir)

    with tempfile.TemporaryDirectory() as workdir:
        tokenizer, model = load_base(args, instructions, Path(workdir))
    train_set, eval_set = (
        encode_examples(tokenizer, args.prompt_template, examples, args.max_length, args.input_file)
        for examples in (instructions.train, instructions.eval)
    )
    truncated = train_set.truncated + eval_set.truncated
    if truncated:
        log(f"Warning: {truncated} prompt(s) longer than --max-length {args.max_length} were cut at the front.")

    trainer = Trainer(
        model=model,
        args=training_arguments(args, paths.checkpoint_dir, device),
        train_dataset=train_set.features,
        eval_dataset=eval_set.features,
        processing_class=tokenizer,
        data_collator=CompletionOnlyCollator(tokenizer.pad_token_id),
        callbacks=list(callbacks),
    )
    print("Start training ...")
    trainer.train(resume_from_checkpoint=resume_from)

    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    with atomic_directory(paths.model_dir) as staging:
        trainer.save_model(str(staging))
        save_template(staging, args.prompt_template)
        model.eval()
        evaluation = evaluate(Answerer(model, tokenizer, args.prompt_template, GenerationSettings()), instructions.eval)
        print(format_table(evaluation))
        report = {
            "base_model": args.model_name,
            "input_file": str(args.input_file),
            "global_step": trainer.state.global_step,
            "epochs": epoch_losses(trainer.state.log_history),
            "evaluation": evaluation.to_json(),
        }
        (staging / REPORT_FILE).write_text(json.dumps(report, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    shutil.rmtree(paths.checkpoint_dir, ignore_errors=True)  # the finished model supersedes them
    print(f"Training finished. Wrote model to {paths.model_dir}")
    return paths.model_dir


def main(argv=None) -> int:
    run(build_parser().parse_args(argv))
    return 0
