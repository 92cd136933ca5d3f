"""instruct_ger.py: fine-tune a causal LM on an instruction file with a completion-only loss.

This module is the command line: flags, their defaults and every check that needs no model.
Importing torch and transformers takes seconds, so fine_tune (the training itself) is
imported only once the flags and the instruction file have passed: a typo is reported at once.
"""

import argparse
from pathlib import Path

from ..cli import HelpFormatter, UserError, dropout_rate, non_negative_float, positive_float, positive_int, seed
from ..data.prompt import DEFAULT_INPUT_TEMPLATE, DEFAULT_TEMPLATE
from ..data.sources import read_instructions
from ..models.hub import check_model_directory
from ..models.tiny import TINY_MODEL_NAME
from ..planning.preflight import OPTIMIZERS
from .outputs import check_outputs

# The tutorial's settings.
DEFAULTS = {
    "input_file": "instruct_ger_bsp_1.txt",
    "model_name": "malteos/bloom-1b5-clp-german",
    "output_dir": "instruct_ger",
    "output_model": "instruct_ger_bsp_1_1b5_ep4",
    "epochs": 4,
    "learning_rate": 2e-5,
}
# A model that starts from random weights needs far more steps and a far larger
# learning rate than the tutorial's gentle fine-tune of a pretrained 1.5B model.
TINY_PRESET = {"epochs": 60, "learning_rate": 3e-3, "output_model": "instruct_ger_bsp_1_tiny"}
TINY_DEFAULTS = {**DEFAULTS, **TINY_PRESET}
# Writing a checkpoint of the 1b5 model takes about a minute on a laptop (checkpoints.py).
CHECKPOINT_MINUTES = 10.0


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
    grouping = parser.add_mutually_exclusive_group()
    grouping.add_argument(
        "--group-by-length",
        dest="group_by_length",
        action="store_true",
        help="batch examples of similar length (less padding, less varied batches; default: only where it saves "
        "30%% of the positions)",
    )
    grouping.add_argument(
        "--no-group-by-length", dest="group_by_length", action="store_false", help="always shuffle freely"
    )
    parser.set_defaults(group_by_length=None)
    parser.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto", help="auto: CUDA if present")
    precision = parser.add_mutually_exclusive_group()
    precision.add_argument(
        "--precision",
        choices=["auto", "fp32", "bf16", "fp16"],
        default="auto",
        help="fp32, or bf16/fp16 mixed precision (float32 weights); auto: bf16 on a GPU that has it and on a CPU "
        "where a quick measurement finds it faster, else fp32",
    )
    precision.add_argument(
        "--bf16", dest="precision", action="store_const", const="bf16", help="the same as --precision bf16"
    )
    precision.add_argument(
        "--fp16", dest="precision", action="store_const", const="fp16", help="the same as --precision fp16 (CUDA)"
    )
    checkpointing = parser.add_mutually_exclusive_group()
    checkpointing.add_argument(
        "--gradient-checkpointing",
        dest="gradient_checkpointing",
        action="store_true",
        help="recompute activations in the backward pass: less memory for about a sixth more time (the default)",
    )
    checkpointing.add_argument(
        "--no-gradient-checkpointing",
        dest="gradient_checkpointing",
        action="store_false",
        help="keep the activations: faster steps where memory is plentiful",
    )
    parser.set_defaults(gradient_checkpointing=True)
    parser.add_argument("--seed", type=seed, default=42, help="random seed (data order, initialisation)")
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
    parser.add_argument(
        "--tutorial-template",
        action="store_true",
        help="prompt with the tutorial's template even where the base model has a chat template of its own",
    )
    checkpoints = parser.add_argument_group("checkpoints")
    checkpoints.add_argument(
        "--checkpoint-minutes",
        type=non_negative_float,
        default=CHECKPOINT_MINUTES,
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
    if not tiny:
        check_model_directory(args.model_name)
    check_outputs(args)
    return args


def run(args: argparse.Namespace, callbacks=(), argv: list[str] | None = None) -> Path | None:
    """Train as the parsed flags say and return the written model directory (None for --dry-run)."""
    args = resolve_settings(args)
    instructions = read_instructions(args.input_file, args.eval_file)
    from .fine_tune import fine_tune  # torch and transformers: only for input that passed its checks

    return fine_tune(args, instructions, callbacks, argv)


def main(argv=None) -> int:
    run(build_parser().parse_args(argv), argv=argv)
    return 0
