"""instruct_ger.py: fine-tune a causal LM on an instruction file with a completion-only loss.

Under torchrun or accelerate launch every process trains; only the main process
prints, evaluates by generation and publishes the model directory.
"""

import argparse
import json
import shutil
from pathlib import Path

import torch
from accelerate import PartialState
from transformers import Trainer, TrainingArguments, set_seed
from transformers.trainer_utils import get_last_checkpoint
from transformers.utils import logging as hf_logging

from .cli import HelpFormatter, UserError, dropout_rate, log, non_negative_float, positive_float, positive_int
from .device import check_mixed_precision, cpu_has_native_bf16, resolve_device
from .evaluation import evaluate, format_table
from .generation import Answerer, GenerationSettings
from .instructions import InstructionSet, parse_instruction_file
from .lora import LoraSettings, add_lora
from .modeldir import StagedDirectory, load_tokenizer_and_model
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
TINY_DEFAULTS = {**DEFAULTS, **TINY_PRESET}
REPORT_FILE = "training_report.json"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description="Fine-tune a causal language model on an instruction file (instruction#answer per line).",
        epilog="Example: python instruct_ger.py --model-name tiny-bloom  (offline, about a minute on a CPU)",
        formatter_class=HelpFormatter,
    )
    parser.add_argument("--input-file", default=DEFAULTS["input_file"], help="instruction file")
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
    parser.add_argument("--resume", action="store_true", help="continue from the latest checkpoint of this model")
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
    validate_template(args.prompt_template)
    if (args.save_adapter or args.lora_target_modules) and not args.lora:
        raise UserError("--save-adapter and --lora-target-modules go with --lora")
    if args.save_adapter and tiny:
        raise UserError(f"--save-adapter needs a base model that outlives the run; {TINY_MODEL_NAME} is built anew")
    return args


def print_overview(instructions: InstructionSet, template: str) -> None:
    first_train, first_eval = instructions.train[0], instructions.eval[0]
    print(f"First training sentence: {format_prompt(template, first_train.instruction)}{first_train.answer}")
    print(f"First evaluation sentence: {format_prompt(template, first_eval.instruction)}{first_eval.answer}")
    print(f"#train: {len(instructions.train)}")
    print(f"#eval: {len(instructions.eval)}")
    if instructions.eval_is_train:
        log("Notice: no _EVAL_ marker in the file, so the training lines are also used for evaluation.")


def checkpoint_to_resume(args, checkpoint_dir: Path, is_main: bool) -> str | None:
    latest = get_last_checkpoint(str(checkpoint_dir)) if checkpoint_dir.is_dir() else None
    if args.resume and latest is None:
        raise UserError(f"--resume: no checkpoint in {checkpoint_dir}; run once without --resume")
    if not args.resume and latest is not None and is_main:
        log(f"Notice: {latest} is left from an interrupted run; starting over (pass --resume to continue it).")
    return latest if args.resume else None


def load_base(args, instructions: InstructionSet, training_args: TrainingArguments):
    is_main = training_args.process_index == 0
    if is_main:
        print(f"Model: {args.model_name}")
    if args.model_name != TINY_MODEL_NAME:
        # fp32 master weights: half precision weights on a CPU train slowly and lose small updates.
        return load_tokenizer_and_model(args.model_name, dtype=torch.float32, trust_remote_code=args.trust_remote_code)
    # Built by the main process alone (save_pretrained writes on rank 0 only), in a folder every
    # process can read, loaded by all, then removed.
    base_dir = Path(args.output_dir) / f".{TINY_MODEL_NAME}-base-{args.output_model}"
    with training_args.main_process_first(desc=f"building {TINY_MODEL_NAME}"):
        if is_main:
            texts = [
                format_prompt(args.prompt_template, e.instruction) + e.answer
                for e in instructions.train + instructions.eval
            ]
            build_tiny_bloom(texts, base_dir, seed=args.seed)
        loaded = load_tokenizer_and_model(str(base_dir), dtype=torch.float32)
    PartialState().wait_for_everyone()
    if is_main:
        shutil.rmtree(base_dir)
    return loaded


def training_arguments(args, checkpoint_dir: Path, device: str) -> TrainingArguments:
    return TrainingArguments(
        output_dir=str(checkpoint_dir),
        num_train_epochs=args.epochs,
        learning_rate=args.learning_rate,
        weight_decay=args.weight_decay,
        per_device_train_batch_size=args.batch_size,
        per_device_eval_batch_size=args.batch_size,
        gradient_accumulation_steps=args.gradient_accumulation_steps,
        bf16=args.bf16,
        fp16=args.fp16,
        activation_checkpointing=args.gradient_checkpointing,
        # Non-reentrant checkpointing also works when only LoRA adapters require gradients.
        activation_checkpointing_kwargs={"use_reentrant": False},
        logging_strategy="epoch",
        eval_strategy="epoch",
        save_strategy="epoch",
        save_total_limit=1,  # the 1b5 model with optimizer state makes a 16 GB checkpoint
        seed=args.seed,
        use_cpu=device == "cpu",
        remove_unused_columns=False,  # the collator needs prompt_length
        ddp_find_unused_parameters=False,  # every trainable weight is used in every step
        report_to="none",
    )


def epoch_losses(log_history: list[dict]) -> list[dict]:
    by_epoch: dict[int, dict] = {}
    for entry in log_history:
        for key in ("loss", "eval_loss"):
            if key in entry:
                by_epoch.setdefault(round(entry["epoch"]), {})[key] = entry[key]
    return [{"epoch": epoch, **losses} for epoch, losses in sorted(by_epoch.items())]


def save_weights(trainer: Trainer, tokenizer, staging: Path, merge_lora: bool, is_main: bool):
    """Write weights and tokenizer; return the model to generate with."""
    if not merge_lora:
        trainer.save_model(str(staging))  # on every process: FSDP and DeepSpeed gather the weights here
        return trainer.model
    model = trainer.model.merge_and_unload()  # plain weights that load without peft
    if is_main:
        model.save_pretrained(staging)
        tokenizer.save_pretrained(staging)
    return model


def write_report(staging: Path, args, trainer: Trainer, evaluation) -> None:
    report = {
        "base_model": args.model_name,
        "input_file": str(args.input_file),
        "global_step": trainer.state.global_step,
        "epochs": epoch_losses(trainer.state.log_history),
        "evaluation": evaluation.to_json(),
    }
    (staging / REPORT_FILE).write_text(json.dumps(report, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")


def run(args: argparse.Namespace, callbacks=()) -> Path:
    """Train as the parsed flags say and return the written model directory."""
    args = resolve_settings(args)
    instructions = parse_instruction_file(args.input_file)
    device = resolve_device(args.device)
    check_mixed_precision(
        device, bf16=args.bf16, fp16=args.fp16, cuda_bf16_supported=device == "cuda" and torch.cuda.is_bf16_supported()
    )
    if args.bf16 and device == "cpu" and not cpu_has_native_bf16():
        log("Warning: this CPU has no native bfloat16 (AVX512-BF16 or AMX); --bf16 will train far slower than fp32.")
    model_dir = Path(args.output_dir) / args.output_model
    checkpoint_dir = Path(args.output_dir) / f"checkpoints-{args.output_model}"
    training_args = training_arguments(args, checkpoint_dir, device)  # joins the process group, if any
    is_main = training_args.process_index == 0
    if is_main:
        print_overview(instructions, args.prompt_template)
    resume_from = checkpoint_to_resume(args, checkpoint_dir, is_main)

    tokenizer, model = load_base(args, instructions, training_args)
    if args.lora:
        lora = LoraSettings(args.lora_r, args.lora_alpha, args.lora_dropout, tuple(args.lora_target_modules))
        set_seed(args.seed)  # the adapters' random init, before the Trainer seeds anything
        model = add_lora(model, lora)
    train_set, eval_set = (
        encode_examples(tokenizer, args.prompt_template, examples, args.max_length, args.input_file)
        for examples in (instructions.train, instructions.eval)
    )
    truncated = train_set.truncated + eval_set.truncated
    if truncated and is_main:
        log(f"Warning: {truncated} prompt(s) longer than --max-length {args.max_length} were cut at the front.")

    trainer = Trainer(
        model=model,
        args=training_args,
        train_dataset=train_set.features,
        eval_dataset=eval_set.features,
        processing_class=tokenizer,
        data_collator=CompletionOnlyCollator(tokenizer.pad_token_id),
        callbacks=list(callbacks),
    )
    if is_main:
        print("Start training ...")
    trainer.train(resume_from_checkpoint=resume_from)

    ready_for_generation(trainer.model, tokenizer)
    publish_model(args, trainer, tokenizer, instructions, model_dir, checkpoint_dir, is_main)
    return model_dir


def ready_for_generation(model, tokenizer) -> None:
    """Settings that the saved model carries into generate.py and any other tool."""
    # The Trainer switched the KV cache off for training; saved that way, every generation
    # would recompute the whole sequence for each new token.
    model.config.use_cache = True
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.pad_token_id = tokenizer.pad_token_id


def publish_model(args, trainer, tokenizer, instructions, model_dir: Path, checkpoint_dir: Path, is_main: bool):
    """Save, evaluate by generation and rename into place; the main process alone does all but saving."""
    target = StagedDirectory(model_dir)
    if is_main:
        target.prepare()
    PartialState().wait_for_everyone()
    merge_lora = args.lora and not args.save_adapter
    trained = save_weights(trainer, tokenizer, target.staging, merge_lora=merge_lora, is_main=is_main)
    if is_main:
        save_template(target.staging, args.prompt_template)
        answerer = Answerer(trained.eval(), tokenizer, args.prompt_template, GenerationSettings())
        evaluation = evaluate(answerer, instructions.eval)
        print(format_table(evaluation))
        write_report(target.staging, args, trainer, evaluation)
        target.publish()
        shutil.rmtree(checkpoint_dir, ignore_errors=True)  # the finished model supersedes them
        print(f"Training finished. Wrote model to {model_dir}")
    PartialState().wait_for_everyone()


def main(argv=None) -> int:
    # Loading and writing weights would draw a bar per checkpoint; the Trainer's own bar stays.
    hf_logging.disable_progress_bar()
    run(build_parser().parse_args(argv))
    return 0
