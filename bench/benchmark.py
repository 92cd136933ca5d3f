#!/usr/bin/env python3
"""Training and generation speed and peak memory on randomly initialised models of real shapes.

    python bench/benchmark.py                       # every shape and configuration (about 15 minutes on 2 cores)
    python bench/benchmark.py --shapes 350m --steps 1

On a CPU without native bf16 instructions (AVX512-BF16 or AMX) the bf16 rows are skipped unless
--emulated-bf16 is given: emulated, one training step takes many times as long as in fp32.
Each configuration runs in its own process under /usr/bin/time -v, so that its peak resident
memory is that of the whole process. Training runs the project's own pieces (instruction
file, template, collator, LoRA, Trainer) on instruct_ger_bsp_1.txt; the weights are random,
so only speed and memory mean anything here, not the answers.
"""

import argparse
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from llm_instruct.device import cpu_has_native_bf16  # after sys.path names the project

# Shapes of the tutorial's base models (malteos/bloom-1b5-clp-german, malteos/bloom-350m-german).
SHAPES = {
    "1b5": {"n_layer": 24, "hidden_size": 2048, "n_head": 16, "vocab_size": 50304},
    "350m": {"n_layer": 24, "hidden_size": 1024, "n_head": 16, "vocab_size": 50304},
}
CONFIGURATIONS = [("full", "fp32"), ("full", "bf16"), ("lora", "fp32"), ("lora", "bf16")]
# Full fine-tuning with AdamW holds fp32 weights, gradients and two moments: 16 bytes a parameter.
FULL_FINETUNE_BYTES_PER_PARAMETER = 16


def parameter_count(shape: dict) -> int:
    hidden, layers, vocab = shape["hidden_size"], shape["n_layer"], shape["vocab_size"]
    per_layer = 12 * hidden * hidden + 13 * hidden  # attention and MLP weights, biases, two layer norms
    return vocab * hidden + layers * per_layer + 4 * hidden  # embeddings (tied head), embedding and final norms


def total_memory_bytes() -> int:
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def measure_gemm_flops(size: int = 2048, repeats: int = 10, rounds: int = 3) -> float:
    """The best of a few rounds: the machine's fp32 matrix-multiply rate, what MFU is measured against."""
    import torch

    a, b = torch.randn(size, size), torch.randn(size, size)
    torch.mm(a, b)
    best = float("inf")
    for _ in range(rounds):
        started = time.perf_counter()
        for _ in range(repeats):
            torch.mm(a, b)
        best = min(best, time.perf_counter() - started)
    return 2 * size**3 * repeats / best


def worker(args) -> dict:
    """One configuration: a few training steps, then a few answers. Prints a JSON line."""
    import torch
    from transformers import BloomConfig, BloomForCausalLM, Trainer, TrainerCallback, TrainingArguments

    from llm_instruct.generation import Answerer, GenerationSettings
    from llm_instruct.instructions import parse_instruction_file
    from llm_instruct.lora import LoraSettings, add_lora
    from llm_instruct.prompt import DEFAULT_TEMPLATE, format_prompt
    from llm_instruct.tiny import train_byte_level_tokenizer
    from llm_instruct.tokens import CompletionOnlyCollator, encode_examples

    instructions = parse_instruction_file(ROOT / "instruct_ger_bsp_1.txt")
    texts = [format_prompt(DEFAULT_TEMPLATE, e.instruction) + e.answer for e in instructions.train]
    tokenizer = train_byte_level_tokenizer(texts, vocab_size=4000)
    torch.manual_seed(0)
    model = BloomForCausalLM(BloomConfig(**SHAPES[args.shape], eos_token_id=tokenizer.eos_token_id))
    if args.mode == "lora":
        model = add_lora(model, LoraSettings(r=16, alpha=32, dropout=0.05))
    features = encode_examples(tokenizer, DEFAULT_TEMPLATE, instructions.train, 512, "instruct_ger_bsp_1.txt").features

    collate = CompletionOnlyCollator(tokenizer.pad_token_id)
    timed = {"tokens": 0, "seconds": 0.0, "steps": 0}

    class CountingCollator:
        def __call__(self, batch):
            collated = collate(batch)
            timed["last_tokens"] = int(collated["attention_mask"].sum())
            return collated

    class StepTimer(TrainerCallback):
        def on_step_begin(self, *_, **__):
            self.started = time.perf_counter()

        def on_step_end(self, args_, state, *_, **__):
            if state.global_step > 1:  # the first step warms up allocators and kernels
                timed["seconds"] += time.perf_counter() - self.started
                timed["tokens"] += timed["last_tokens"]
                timed["steps"] += 1

    trainer = Trainer(
        model=model,
        args=TrainingArguments(
            output_dir=args.scratch,
            max_steps=args.steps + 1,
            per_device_train_batch_size=8,
            learning_rate=2e-5,
            bf16=args.precision == "bf16",
            use_cpu=True,
            save_strategy="no",
            logging_strategy="no",
            remove_unused_columns=False,
            report_to="none",
            disable_tqdm=True,
        ),
        train_dataset=features,
        data_collator=CountingCollator(),
        callbacks=[StepTimer()],
    )
    trainer.train()
    result = {"train_tokens_per_second": timed["tokens"] / timed["seconds"], "train_steps": timed["steps"]}
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    result["trainable_parameters"] = trainable

    if args.generate:
        model = model.merge_and_unload() if args.mode == "lora" else model
        dtype = torch.bfloat16 if args.precision == "bf16" else torch.float32
        model = model.to(dtype).eval()
        answerer = Answerer(model, tokenizer, DEFAULT_TEMPLATE, GenerationSettings(max_new_tokens=32, num_beams=5))
        # Random weights hardly ever produce EOS or a newline, so every answer runs to the limit.
        answers = [answerer.answer(e.instruction) for e in instructions.eval[: args.answers]]
        seconds = sum(a.seconds for a in answers)
        result["generate_tokens_per_second"] = sum(a.new_tokens for a in answers) / seconds
        result["seconds_per_answer"] = seconds / len(answers)
    print("RESULT " + json.dumps(result))
    return result


def run_configuration(shape: str, mode: str, precision: str, args) -> dict:
    command = [
        "/usr/bin/time", "-v", sys.executable, __file__, "--worker",
        "--shape", shape, "--mode", mode, "--precision", precision,
        "--steps", str(args.steps), "--answers", str(args.answers), "--scratch", args.scratch,
    ]  # fmt: skip
    if precision == "fp32":  # generate.py answers in float32 on a CPU
        command.append("--generate")
    started = time.perf_counter()
    completed = subprocess.run(
        command, capture_output=True, text=True, env={**os.environ, "HF_HUB_OFFLINE": "1"}, check=False
    )
    wall = time.perf_counter() - started
    found = re.search(r"^RESULT (.*)$", completed.stdout, re.MULTILINE)
    peak = re.search(r"Maximum resident set size \(kbytes\): (\d+)", completed.stderr)
    if completed.returncode != 0 or not found:
        tail = completed.stderr.strip().splitlines()[-3:]
        return {"error": f"exit {completed.returncode}: {' | '.join(tail)}", "wall_seconds": wall}
    result = json.loads(found.group(1))
    result.update(peak_rss_gib=int(peak.group(1)) / 2**20, wall_seconds=wall)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shapes", nargs="+", choices=list(SHAPES), default=["350m", "1b5"])
    parser.add_argument("--steps", type=int, default=2, help="timed training steps (after one warm-up step)")
    parser.add_argument("--answers", type=int, default=1, help="answers generated per configuration")
    parser.add_argument("--scratch", default="/tmp/llm-instruct-bench", help="Trainer output folder (nothing is saved)")
    parser.add_argument("--emulated-bf16", action="store_true", help="run bf16 on a CPU without native bf16 too")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--shape", choices=list(SHAPES), help=argparse.SUPPRESS)
    parser.add_argument("--mode", choices=["full", "lora"], help=argparse.SUPPRESS)
    parser.add_argument("--precision", choices=["fp32", "bf16"], help=argparse.SUPPRESS)
    parser.add_argument("--generate", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args)
        return

    import torch

    gemm = measure_gemm_flops()
    memory = total_memory_bytes()
    print(
        f"Machine: {os.cpu_count()} CPU cores, {memory / 2**30:.1f} GiB, torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads, native bf16: {'yes' if cpu_has_native_bf16() else 'no'}"
    )
    print(f"Measured fp32 GEMM rate (2048x2048 matmul): {gemm / 1e9:.1f} GFLOP/s")
    header = "| shape | params | mode | precision | train tok/s | MFU | peak RSS GiB | gen tok/s | s/answer |"
    rows = [header, "|" + "---|" * 9]
    for shape in args.shapes:
        params = parameter_count(SHAPES[shape])
        for mode, precision in CONFIGURATIONS:
            label = f"| {shape} | {params / 1e9:.2f}B | {mode} | {precision} |"
            needed = params * FULL_FINETUNE_BYTES_PER_PARAMETER
            if precision == "bf16" and not (cpu_has_native_bf16() or args.emulated_bf16):
                rows.append(f"{label} skipped: no native bf16 on this CPU (--emulated-bf16 runs it anyway) | | | | |")
                print(rows[-1], flush=True)
                continue
            if mode == "full" and needed > memory:
                rows.append(
                    f"{label} does not fit: weights, gradients and AdamW state alone need "
                    f"{needed / 2**30:.1f} GiB | | | | |"
                )
                print(rows[-1], flush=True)
                continue
            result = run_configuration(shape, mode, precision, args)
            if "error" in result:
                rows.append(f"{label} failed: {result['error']} | | | | |")
            else:
                # Full training costs about 6 FLOPs per parameter and token (forward 2, backward 4);
                # with frozen base weights LoRA skips their weight gradients: about 4.
                flops_per_token = (6 if mode == "full" else 4) * params
                mfu = result["train_tokens_per_second"] * flops_per_token / gemm
                generation = (
                    f"{result['generate_tokens_per_second']:.2f} | {result['seconds_per_answer']:.1f}"
                    if "generate_tokens_per_second" in result
                    else "- | -"
                )
                rows.append(
                    f"{label} {result['train_tokens_per_second']:.1f} | {mfu:.0%} | "
                    f"{result['peak_rss_gib']:.1f} | {generation} |"
                )
            print(rows[-1], flush=True)
    print()
    print("\n".join(rows))


if __name__ == "__main__":
    main()
