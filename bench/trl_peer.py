#!/usr/bin/env python3
"""The peer for the benchmark: the same fine-tuning job done with TRL's SFTTrainer instead of this project.

Full fine-tuning in float32 on the CPU, completion-only loss on prompt-completion data, TRL's defaults
otherwise. Prints one line `RESULT {json}` on stdout; the model is not saved. Needs trl 1.x and
transformers 5.x, which this project does not depend on, so run it from a virtualenv that has them:

    python bench/trl_peer.py --model-dir MODEL_DIR --train-file train.jsonl --output-dir peer-scratch
    python bench/trl_peer.py --model-dir MODEL_DIR --train-file train.jsonl --output-dir peer-scratch \\
        --epochs 3 --batch-size 4 --no-gradient-checkpointing

bench/benchmark.py --whole-run writes MODEL_DIR and train.jsonl and runs this script beside
instruct_ger.py on the same job.

--train-file holds one JSON object per line with "prompt" (the instruction already in the prompt
template) and "completion" (the answer). TRL appends EOS to each completion, tokenizes prompt and
prompt+completion, and takes the loss on the completion tokens and EOS only.
"""

import argparse
import contextlib
import json
import sys

import datasets
import torch
import transformers
import trl
from transformers import AutoModelForCausalLM, AutoTokenizer
from trl import SFTConfig, SFTTrainer


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model-dir", required=True, help="local model directory with config, weights and tokenizer")
    parser.add_argument("--train-file", required=True, help='JSONL file, one {"prompt": ..., "completion": ...} a line')
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=8, help="examples per step")
    parser.add_argument("--learning-rate", type=float, default=2e-5)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument(
        "--no-gradient-checkpointing",
        dest="gradient_checkpointing",
        action="store_false",
        help="turn off activation checkpointing, which TRL turns on by default (this project does not)",
    )
    parser.add_argument("--output-dir", required=True, help="scratch folder for the trainer; nothing is saved there")
    return parser.parse_args(argv)


def build_trainer(args) -> SFTTrainer:
    with open(args.train_file, encoding="utf-8") as lines:
        # In memory, so that TRL's preparation writes no cache files between runs.
        train_dataset = datasets.Dataset.from_list([json.loads(line) for line in lines if line.strip()])
    tokenizer = AutoTokenizer.from_pretrained(args.model_dir)
    model = AutoModelForCausalLM.from_pretrained(args.model_dir, dtype=torch.float32)

    config = SFTConfig(
        output_dir=args.output_dir,
        num_train_epochs=args.epochs,
        per_device_train_batch_size=args.batch_size,
        learning_rate=args.learning_rate,
        seed=args.seed,
        use_cpu=True,
        bf16=False,  # TRL turns bf16 mixed precision on unless told otherwise; this job trains in float32
        # The new name of TRL's gradient_checkpointing=True default: setting it avoids transformers'
        # deprecation warning for the old name and makes the choice visible.
        activation_checkpointing=args.gradient_checkpointing,
        # completion_only_loss stays None: TRL then takes the loss on the completion for prompt-completion data.
        logging_strategy="epoch",
        save_strategy="no",
        report_to="none",
    )
    return SFTTrainer(model=model, args=config, train_dataset=train_dataset, processing_class=tokenizer)


def main(argv=None):
    args = parse_args(argv)
    # The Trainer prints its logs on stdout; keep stdout for the RESULT line alone.
    with contextlib.redirect_stdout(sys.stderr):
        trainer = build_trainer(args)
        metrics = trainer.train().metrics
    epoch_losses = [entry["loss"] for entry in trainer.state.log_history if "loss" in entry]
    result = {
        "train_runtime": metrics["train_runtime"],
        "train_samples": len(trainer.train_dataset),
        "epochs": args.epochs,
        "batch_size": args.batch_size,
        "global_step": trainer.state.global_step,
        "train_loss": metrics["train_loss"],  # mean over the whole run
        "final_loss": epoch_losses[-1],  # mean over the last epoch
        "gradient_checkpointing": args.gradient_checkpointing,
        "optimizer": trainer.args.optim.value,  # an OptimizerNames enum after SFTConfig.__post_init__
        "trl_version": trl.__version__,
        "transformers_version": transformers.__version__,
        "torch_version": torch.__version__,
    }
    print("RESULT " + json.dumps(result), flush=True)


if __name__ == "__main__":
    sys.exit(main())
