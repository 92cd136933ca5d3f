#!/usr/bin/env python3
"""Training and generation speed, peak memory and the memory estimate, on random models of real shapes.

    python bench/benchmark.py                                  # CPU: both shapes, full and LoRA (about 20 minutes on 2 cores)
    python bench/benchmark.py --shapes 350m --steps 3
    python bench/benchmark.py --device cuda --precision bf16   # GPU rows
    python bench/benchmark.py --device cuda --tutorial-run 1b5 # the tutorial's whole run, time split by phase
    python bench/benchmark.py --whole-run 350m --peer-python PEER_VENV/bin/python  # against TRL, same job
    python bench/benchmark.py --decoding 350m                  # answering: seconds per token against the floor

Each row runs in its own process (under /usr/bin/time -v on a CPU, for the peak resident memory of
the whole process; on CUDA the peak comes from torch.cuda.max_memory_allocated). Training runs
the project's own pieces (instruction file, template, length-grouped batches, collator, answer-only
logits, LoRA, Trainer) on instruct_ger_bsp_1.txt. The weights are random, so only speed and memory
mean anything here, not the answers. MFU compares training FLOPs on real tokens (6 per parameter
and token for full fine-tuning, 4 for LoRA, whose frozen weights get no weight gradients) with the
matrix-multiply rate measured in the same process, before and after the timed steps.
"""

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

# Shapes of the tutorial's base models (malteos/bloom-1b5-clp-german, malteos/bloom-350m-german).
SHAPES = {
    "1b5": {"n_layer": 24, "hidden_size": 2048, "n_head": 16, "vocab_size": 50304},
    "350m": {"n_layer": 24, "hidden_size": 1024, "n_head": 16, "vocab_size": 50304},
}
BATCH_SIZE = 8


def parameter_count(shape: dict) -> int:
    hidden, layers, vocab = shape["hidden_size"], shape["n_layer"], shape["vocab_size"]
    per_layer = 12 * hidden * hidden + 13 * hidden  # attention and MLP weights, biases, two layer norms
    return vocab * hidden + layers * per_layer + 4 * hidden  # embeddings (tied head), embedding and final norms


def fastest_seconds(work, rounds: int, device: str) -> float:
    """The shortest of rounds timed calls of work(), waiting for a GPU to finish around each."""
    import torch

    best = float("inf")
    for _ in range(rounds):
        if device == "cuda":
            torch.cuda.synchronize()
        started = time.perf_counter()
        work()
        if device == "cuda":
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - started)
    return best


def measure_gemm_flops(device: str, dtype_name: str) -> float:
    """The best of a few rounds of a square matrix product: what MFU is measured against."""
    import torch

    dtype = {"fp32": torch.float32, "bf16": torch.bfloat16}[dtype_name]
    size, repeats = (8192, 20) if device == "cuda" else (2048, 10)
    a, b = (torch.randn(size, size, device=device).to(dtype) for _ in range(2))
    torch.mm(a, b)

    def products():
        for _ in range(repeats):
            torch.mm(a, b)

    return 2 * size**3 * repeats / fastest_seconds(products, 3, device)


def example_data():
    """The example file's training examples, a tokenizer trained on them and their encoding."""
    from llm_instruct.data.prompt import PromptStyle
    from llm_instruct.data.sources import read_instructions
    from llm_instruct.data.tokens import encode_examples
    from llm_instruct.models.tiny import train_byte_level_tokenizer

    instructions = read_instructions(ROOT / "instruct_ger_bsp_1.txt")
    style = PromptStyle()
    texts = [style.format(e.instruction) + e.answer for e in instructions.train]
    tokenizer = train_byte_level_tokenizer(texts, vocab_size=4000)
    encoded = encode_examples(tokenizer, style, instructions.train, 512, "instruct_ger_bsp_1.txt")
    return instructions, style, tokenizer, encoded


def random_bloom(shape: str, tokenizer, device: str):
    import torch
    from transformers import BloomConfig, BloomForCausalLM

    torch.manual_seed(0)
    config = BloomConfig(**SHAPES[shape], eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id)
    with torch.device(device):
        return BloomForCausalLM(config)


def train_worker(args) -> dict:
    """One row: a few timed training steps after a warm-up, then a few answers."""
    import torch
    from transformers import TrainerCallback, TrainingArguments

    from llm_instruct.answering.generation import Answerer, GenerationSettings
    from llm_instruct.models.lora import LoraSettings, add_lora
    from llm_instruct.planning.device import base_weights_dtype
    from llm_instruct.training.fused import fuse_for_training
    from llm_instruct.training.mixed_precision import recast_linears
    from llm_instruct.training.trainer import build_trainer

    instructions, style, tokenizer, encoded = example_data()
    bf16 = args.precision == "bf16"
    lora = args.mode == "lora"
    model = random_bloom(args.shape, tokenizer, args.device)
    model.to(base_weights_dtype(args.device, lora=lora, precision=args.precision))
    if not args.unfused:
        fuse_for_training(model, single_process=True)
        if bf16:
            recast_linears(model)
    if lora:
        model = add_lora(model, LoraSettings(r=16, alpha=32, dropout=0.05), "random")
    timed = {"tokens": 0, "seconds": 0.0, "steps": 0, "last_tokens": 0}

    class StepTimer(TrainerCallback):
        def on_step_begin(self, *_, **__):
            if args.device == "cuda":
                torch.cuda.synchronize()
            self.started = time.perf_counter()

        def on_step_end(self, args_, state, *_, **__):
            if args.device == "cuda":
                torch.cuda.synchronize()
            if state.global_step > 1:  # the first step warms up allocators and kernels
                timed["seconds"] += time.perf_counter() - self.started
                timed["tokens"] += timed["last_tokens"]
                timed["steps"] += 1

    training_args = TrainingArguments(
        output_dir=args.scratch,
        max_steps=args.steps + 1,
        per_device_train_batch_size=BATCH_SIZE,
        learning_rate=2e-5,
        optim=args.optim,
        bf16=bf16,
        use_cpu=args.device == "cpu",
        save_strategy="no",
        logging_strategy="no",
        remove_unused_columns=False,
        prediction_loss_only=True,
        report_to="none",
        disable_tqdm=True,
        seed=42,
    )
    trainer = build_trainer(
        model, tokenizer, training_args, encoded, None, group_by_length=not args.no_grouping,
        callbacks=[StepTimer()], answer_logits_only=not args.full_logits,
    )  # fmt: skip
    collate = trainer.data_collator

    def counting_collator(features):
        batch = collate(features)
        timed["last_tokens"] = int(batch["attention_mask"].sum())
        return batch

    trainer.data_collator = counting_collator
    gemm_before = measure_gemm_flops(args.device, args.precision)
    if args.device == "cuda":
        torch.cuda.reset_peak_memory_stats()  # the peak of training, not of building the random model
    if args.profile:
        print_profile(trainer)
    else:
        trainer.train()
    gemm_after = measure_gemm_flops(args.device, args.precision)
    result = {
        "train_tokens_per_second": timed["tokens"] / timed["seconds"],
        "train_steps": timed["steps"],
        "gemm_flops": max(gemm_before, gemm_after),
        "trainable_parameters": sum(p.numel() for p in model.parameters() if p.requires_grad),
    }
    if args.device == "cuda":
        result["peak_gpu_gib"] = torch.cuda.max_memory_allocated() / 2**30

    if args.answers:
        trainer.optimizer = None
        model = model.merge_and_unload() if lora else model
        # generate.py's default: float16 on CUDA, float32 on a CPU.
        dtype = torch.float16 if args.device == "cuda" else torch.float32
        answerer = Answerer(model.to(dtype).eval(), tokenizer, style, GenerationSettings(max_new_tokens=32))
        # Random weights hardly ever produce EOS or a newline, so every answer runs to the limit.
        answers = [answerer.answer(e.instruction) for e in instructions.eval[: args.answers]]
        seconds = sum(a.seconds for a in answers)
        result["generate_tokens_per_second"] = sum(a.new_tokens for a in answers) / seconds
        result["seconds_per_answer"] = seconds / len(answers)
    return result


def print_profile(trainer) -> None:
    """The ops that cost the most in the timed steps, by self time, from torch.profiler."""
    from torch.profiler import ProfilerActivity, profile, schedule
    from transformers import TrainerCallback

    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if trainer.args.device.type == "cuda" else [])
    timed = schedule(wait=1, warmup=0, active=trainer.args.max_steps - 1, repeat=1)  # all but the warm-up step
    with profile(activities=activities, schedule=timed) as prof:

        class Step(TrainerCallback):
            def on_step_end(self, *_, **__):
                prof.step()

        trainer.add_callback(Step())
        trainer.train()
    sort = "self_cuda_time_total" if trainer.args.device.type == "cuda" else "self_cpu_time_total"
    print(prof.key_averages().table(sort_by=sort, row_limit=15))


def io_written_bytes() -> int:
    fields = dict(line.split(": ") for line in Path("/proc/self/io").read_text().splitlines())
    return int(fields["write_bytes"]) or int(fields["wchar"])


def tutorial_worker(args) -> dict:
    """instruct_ger.py's whole run, as a user starts it, on a random model of the shape saved like a hub model."""
    import torch

    from llm_instruct.training.train import main

    instructions, _, tokenizer, _ = example_data()
    base = Path(args.scratch) / f"random-{args.tutorial_run}"
    if not (base / "config.json").is_file():
        random_bloom(args.tutorial_run, tokenizer, "cpu").save_pretrained(base)
        tokenizer.save_pretrained(base)
    # The example file's training lines, and as many of its evaluation lines as asked for: random
    # weights answer every instruction with the full 200 tokens, which takes long on a CPU.
    training_file, eval_file = Path(args.scratch) / "train.jsonl", Path(args.scratch) / "eval.jsonl"
    for path, examples in ((training_file, instructions.train), (eval_file, instructions.eval[: args.answers])):
        path.write_text(
            "".join(json.dumps({"instruction": e.instruction, "output": e.answer}) + "\n" for e in examples)
        )
    written_before = io_written_bytes()
    output = Path(args.scratch) / "tutorial"
    argv = ["--model-name", str(base), "--output-dir", str(output), "--device", args.device]
    argv += ["--input-file", str(training_file), "--eval-file", str(eval_file)]
    argv += ["--epochs", str(args.epochs)] + (["--bf16"] if args.precision == "bf16" else [])
    main(argv)
    model_dir = output / "instruct_ger_bsp_1_1b5_ep4"
    report = json.loads((model_dir / "training_report.json").read_text())
    result = {
        "seconds": report["seconds"],
        "written_bytes": io_written_bytes() - written_before,
        "model_dir_bytes": sum(f.stat().st_size for f in model_dir.iterdir()),
        "optimizer": report["optimizer"],
    }
    if args.device == "cuda":
        result["peak_gpu_gib"] = torch.cuda.max_memory_allocated() / 2**30
    return result


def run_worker(extra: list[str], args) -> dict:
    command = [sys.executable, __file__, "--worker", "--device", args.device, "--scratch", args.scratch, *extra]
    if args.device == "cpu":
        command = ["/usr/bin/time", "-v", *command]
    started = time.perf_counter()
    completed = subprocess.run(
        command, capture_output=True, text=True, env={**os.environ, "HF_HUB_OFFLINE": "1"}, check=False
    )
    wall = time.perf_counter() - started
    found = re.search(r"^RESULT (.*)$", completed.stdout, re.MULTILINE)
    if completed.returncode != 0 or not found:
        tail = completed.stderr.strip().splitlines()[-3:]
        return {"error": f"exit {completed.returncode}: {' | '.join(tail)}", "wall_seconds": wall}
    if args.profile:
        print(completed.stdout.replace(found.group(0), "").strip(), flush=True)
    result = json.loads(found.group(1))
    peak = re.search(r"Maximum resident set size \(kbytes\): (\d+)", completed.stderr)
    if peak:
        result["peak_rss_gib"] = int(peak.group(1)) / 2**20
    result["wall_seconds"] = wall
    return result


def training_rows(args) -> list[str]:
    from llm_instruct.planning.precision import TRAINING_SHAPE, time_matmuls

    rows = [
        "| shape | params | mode | precision | train tok/s | MFU | peak memory GiB | estimate GiB | s/answer |",
        "|" + "---|" * 9,
    ]
    # Emulated bf16 (a CPU without bf16 instructions) can run 30x slower than fp32: not worth minutes here.
    bf16_too_slow = args.device == "cpu" and time_matmuls(TRAINING_SHAPE).bf16_speedup < 1 / 3
    for shape in args.shapes:
        params = parameter_count(SHAPES[shape])
        for mode in args.modes:
            for precision in args.precision:
                label = f"| {shape} | {params / 1e9:.2f}B | {mode} | {precision} |"
                if precision == "bf16" and bf16_too_slow and not args.slow_bf16:
                    rows.append(f"{label} skipped: bf16 runs over 3x slower than fp32 on this CPU | | | | |")
                    print(rows[-1], flush=True)
                    continue
                extra = ["--shape", shape, "--mode", mode, "--precision", precision, "--optim", args.optim]
                extra += ["--steps", str(args.steps), "--answers", str(args.answers)]
                extra += ["--no-grouping"] if args.no_grouping else []
                extra += ["--full-logits"] if args.full_logits else []
                extra += ["--unfused"] if args.unfused else []
                extra += ["--profile"] if args.profile else []
                result = run_worker(extra, args)
                if "error" in result:
                    rows.append(f"{label} failed: {result['error']} | | | | |")
                else:
                    flops_per_token = (6 if mode == "full" else 4) * params
                    mfu = result["train_tokens_per_second"] * flops_per_token / result["gemm_flops"]
                    peak = result.get("peak_gpu_gib", result.get("peak_rss_gib", float("nan")))
                    answer = f"{result['seconds_per_answer']:.2f}" if "seconds_per_answer" in result else "-"
                    estimate = memory_estimate_gib(shape, mode, precision, args)
                    rows.append(
                        f"{label} {result['train_tokens_per_second']:.1f} | {mfu:.0%} | {peak:.1f} | "
                        f"{estimate:.1f} | {answer} |"
                    )
                print(rows[-1], flush=True)
    return rows


def memory_estimate_gib(shape: str, mode: str, precision: str, args) -> float:
    """What the preflight estimates for this row's training process."""
    from llm_instruct.data.batching import epoch_batches
    from llm_instruct.planning.memory import MemoryPlan, estimate_peak_bytes
    from llm_instruct.planning.plan import answer_positions

    shape_config = SHAPES[shape]
    _, _, _, encoded = example_data()
    batches = epoch_batches(encoded.lengths, BATCH_SIZE, 42, 0, not args.no_grouping)
    plan = MemoryPlan(
        parameters=parameter_count(shape_config),
        trainable=None if mode == "full" else 16 * 4 * shape_config["hidden_size"] * shape_config["n_layer"],
        hidden_size=shape_config["hidden_size"],
        layers=shape_config["n_layer"],
        heads=shape_config["n_head"],
        vocab_size=shape_config["vocab_size"],
        batch_size=BATCH_SIZE,
        sequence_length=max(encoded.lengths),
        device=args.device,
        lora=mode == "lora",
        mixed_precision=precision == "bf16",
        optimizer=args.optim,
        answer_logits_only=not args.full_logits,
        answer_positions=answer_positions(encoded, batches),
    )
    return estimate_peak_bytes(plan) / 2**30


def tutorial_row(args) -> list[str]:
    extra = ["--tutorial-run", args.tutorial_run, "--precision", args.precision[0], "--epochs", str(args.epochs)]
    result = run_worker([*extra, "--answers", str(args.answers)], args)
    if "error" in result:
        return [f"tutorial run failed: {result['error']}"]
    seconds = result["seconds"]
    compute = seconds["training"] - seconds["checkpoints"] - seconds["evaluation_loss"]
    peak = result.get("peak_gpu_gib", result.get("peak_rss_gib", float("nan")))
    return [
        "| phase | seconds |",
        "|---|---|",
        *(f"| {phase} | {value:.1f} |" for phase, value in seconds.items()),
        f"| training compute (training minus checkpoints and evaluation loss) | {compute:.1f} |",
        "",
        (
            f"Inside trainer.train(): {seconds['training'] / compute:.2f}x the training compute time. "
            f"Written: {result['written_bytes'] / 1e9:.2f} GB = {result['written_bytes'] / result['model_dir_bytes']:.2f}x "
            f"the model directory ({result['model_dir_bytes'] / 1e9:.2f} GB). Peak memory {peak:.1f} GiB. "
            f"Optimizer: {result['optimizer']}. Wall time {result['wall_seconds']:.0f} s."
        ),
    ]


SECOND_EXAMPLE = ROOT / "bench" / "instruct_ger_bsp_2.txt"  # 74 training lines


def prepare_whole_run(shape: str, scratch: Path) -> tuple[Path, Path, Path]:
    """A random model of the shape saved like a hub model, and the second example file's training
    lines twice: in the # format for instruct_ger.py and as prompt-completion JSONL for the peer."""
    from llm_instruct.data.prompt import PromptStyle
    from llm_instruct.data.sources import read_examples
    from llm_instruct.models.tiny import train_byte_level_tokenizer

    train = read_examples(SECOND_EXAMPLE, "train")
    style = PromptStyle()
    base = scratch / f"random-{shape}"
    if not (base / "config.json").is_file():
        tokenizer = train_byte_level_tokenizer([style.format(e.instruction) + e.answer for e in train], vocab_size=4000)
        random_bloom(shape, tokenizer, "cpu").save_pretrained(base)
        tokenizer.save_pretrained(base)
    lines, records = scratch / "train.txt", scratch / "train.jsonl"
    lines.write_text("".join(f"{e.instruction}#{e.answer}\n" for e in train), encoding="utf-8")
    records.write_text(
        "".join(json.dumps({"prompt": style.format(e.instruction), "completion": e.answer}) + "\n" for e in train),
        encoding="utf-8",
    )
    return base, lines, records


def run_measured(command: list[str]) -> dict:
    """A command under /usr/bin/time -v, as a user starts it: wall seconds, peak resident memory, output."""
    started = time.perf_counter()
    completed = subprocess.run(
        ["/usr/bin/time", "-v", *command], capture_output=True, text=True, check=False,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )  # fmt: skip
    peak = re.search(r"Maximum resident set size \(kbytes\): (\d+)", completed.stderr)
    return {
        "wall_seconds": time.perf_counter() - started,
        "peak_rss_gib": int(peak.group(1)) / 2**20 if peak else float("nan"),
        "returncode": completed.returncode,
        "stdout": completed.stdout,
        "stderr": completed.stderr,
    }


def whole_run_rows(args) -> list[str]:
    """One epoch of the second example file, batch 8, lr 2e-5: instruct_ger.py as the user runs it
    (each --variant adds flags), and TRL's SFTTrainer on the same data where --peer-python is given."""
    scratch = Path(args.scratch)
    base, lines, records = prepare_whole_run(args.whole_run, scratch)
    rows = ["| run | train seconds | wall seconds | peak memory GiB |", "|---|---|---|---|"]
    for number, variant in enumerate(args.variant or [""]):
        output = scratch / f"ours-{number}"
        command = [sys.executable, str(ROOT / "instruct_ger.py"), "--model-name", str(base), "--input-file", str(lines)]
        command += ["--output-dir", str(output), "--output-model", "m", "--epochs", "1", "--learning-rate", "2e-5"]
        result = run_measured([*command, *variant.split()])
        if result["returncode"] != 0:
            rows.append(f"| instruct_ger.py {variant} | failed: {result['stderr'].strip().splitlines()[-1]} | | |")
        else:
            report = json.loads((output / "m" / "training_report.json").read_text())
            rows.append(
                f"| instruct_ger.py {variant} ({report.get('precision', 'fp32')}) | {report['seconds']['training']:.1f} | "
                f"{result['wall_seconds']:.1f} | {result['peak_rss_gib']:.2f} |"
            )
        print(rows[-1], flush=True)
    if args.peer_python:
        for checkpointing in (True, False):
            peer = [args.peer_python, str(ROOT / "bench" / "trl_peer.py"), "--model-dir", str(base)]
            peer += ["--train-file", str(records), "--output-dir", str(scratch / "peer")]
            result = run_measured(peer + ([] if checkpointing else ["--no-gradient-checkpointing"]))
            found = re.search(r"^RESULT (.*)$", result["stdout"], re.MULTILINE)
            label = f"TRL SFTTrainer, {'defaults' if checkpointing else 'without gradient checkpointing'}"
            if not found:
                rows.append(f"| {label} | failed: {result['stderr'].strip().splitlines()[-1]} | | |")
            else:
                peer_result = json.loads(found.group(1))
                rows.append(
                    f"| {label} (TRL {peer_result['trl_version']}, fp32) | {peer_result['train_runtime']:.1f} | "
                    f"{result['wall_seconds']:.1f} | {result['peak_rss_gib']:.2f} |"
                )
            print(rows[-1], flush=True)
    return rows


def copy_bandwidth(device: str) -> float:
    """Bytes read and written per second by the best of five copies of a 1 GiB tensor."""
    import torch

    source = torch.ones(2**28, device=device)  # 1 GiB of float32
    target = torch.empty_like(source)
    return 2 * source.numel() * source.element_size() / fastest_seconds(lambda: target.copy_(source), 5, device)


def packed_read_rate(model, rows: int) -> float:
    """Weight bytes per second of the model's packed linear products alone, each on rows input
    rows: what the decoding kernel reaches of the copy bandwidth (1 row: greedy, 5: five beams,
    40: eight prompts of five beams)."""
    import torch

    from llm_instruct.answering.packed import PackedLinear

    layers = [module for module in model.modules() if isinstance(module, PackedLinear)]
    inputs = [torch.randn(rows, layer.in_features, dtype=model.dtype) for layer in layers]
    weight_bytes = sum(layer.in_features * layer.out_features for layer in layers) * model.dtype.itemsize

    def products():
        for layer, x in zip(layers, inputs):
            layer(x)

    with torch.inference_mode():
        return weight_bytes / fastest_seconds(products, 5, "cpu")


def decoding_rows(args) -> list[str]:
    """Seconds per new token through the project's Answerer against transformers' plain generate,
    next to the floor of reading every weight once per step; then --eval over the second example
    file, one instruction at a time against batched. The random model never stops on its own, so
    every answer runs to the token limit."""
    import torch
    from transformers import GenerationConfig

    from llm_instruct.answering.evaluation import ANSWER_BATCH_SIZE
    from llm_instruct.answering.generation import Answerer, GenerationSettings
    from llm_instruct.answering.requests import Request
    from llm_instruct.data.prompt import PromptStyle
    from llm_instruct.data.sources import read_examples
    from llm_instruct.models.modeldir import find_model, load_tokenizer_and_model

    scratch = Path(args.scratch)
    base, _, _ = prepare_whole_run(args.decoding, scratch)
    examples = read_examples(SECOND_EXAMPLE, "train")
    first_instruction = examples[0].instruction
    new_tokens = 32
    # A shared machine's copy bandwidth changes within seconds: it is measured around every
    # timing, and every floor uses the highest of the run, the machine's own limit.
    bandwidths = []

    def bandwidth_around(work, *arguments):
        bandwidths.append(copy_bandwidth(args.device))
        result = work(*arguments)
        bandwidths.append(copy_bandwidth(args.device))
        return result, max(bandwidths[-2:])

    timings, setups, kernel_rates, speeds = [], [], [], []
    for dtype in (torch.float32, torch.bfloat16, *((torch.float16,) if args.device == "cuda" else ())):
        started = time.perf_counter()
        tokenizer, model = load_tokenizer_and_model(find_model(str(base)), dtype=dtype)
        model.to(args.device).eval()
        loading = time.perf_counter() - started
        weight_bytes = sum(p.numel() * p.element_size() for p in model.parameters())
        prompt = torch.tensor(
            [tokenizer(PromptStyle().format(examples[0].instruction))["input_ids"]], device=args.device
        )
        plain = {}  # transformers' generate on the model as loaded, before an Answerer packs it
        for beams in (1, 5):
            config = GenerationConfig(num_beams=beams, do_sample=False, max_new_tokens=new_tokens,
                                      min_new_tokens=new_tokens)  # fmt: skip
            with torch.inference_mode():
                started = time.perf_counter()
                model.generate(input_ids=prompt, attention_mask=torch.ones_like(prompt), generation_config=config)
                plain[beams] = (time.perf_counter() - started) / new_tokens
        for beams in (1, 5):
            started = time.perf_counter()
            answerer = Answerer(
                model, tokenizer, PromptStyle(), GenerationSettings(num_beams=beams, max_new_tokens=new_tokens)
            )
            if beams == 1:
                setups.append((str(dtype)[6:], loading, time.perf_counter() - started))
                if args.device == "cpu":
                    for input_rows in (1, 5, 40):
                        rate, near = bandwidth_around(packed_read_rate, model, input_rows)
                        kernel_rates.append((str(dtype)[6:], input_rows, rate, near))
            answerer.stop_ids = [tokenizer.eos_token_id]
            # The faster of two answers: the first also pays for fresh memory for the cache, once per process.
            answers, near = bandwidth_around(
                lambda answer, text: [answer(text), answer(text)], answerer.answer, first_instruction
            )
            now = min(answer.seconds / answer.new_tokens for answer in answers)
            speeds.append((str(dtype)[6:], beams, plain[beams], now, weight_bytes, near))
            print(f"{str(dtype)[6:]}, {beams} beams: {now:.3f} s per token", flush=True)
        answerer = Answerer(model, tokenizer, PromptStyle(), GenerationSettings(max_new_tokens=new_tokens))
        answerer.stop_ids = [tokenizer.eos_token_id]
        started = time.perf_counter()
        alone = [answerer.answer(e.instruction).text for e in examples]
        middle = time.perf_counter()
        together = []
        for start in range(0, len(examples), ANSWER_BATCH_SIZE):
            batch = examples[start : start + ANSWER_BATCH_SIZE]
            together += [a.text for a in answerer.answer_many([Request(e.instruction) for e in batch])]
        timings.append(
            (
                str(dtype)[6:],
                middle - started,
                time.perf_counter() - middle,
                sum(a != b for a, b in zip(alone, together)),
            )
        )
        del model, answerer
    best = max(bandwidths)
    rows = [
        (
            f"Floor: every weight read once per step at {best / 1e9:.1f} GB/s, the highest copy bandwidth "
            f"(read + write) of {len(bandwidths)} measured in this run (lowest {min(bandwidths) / 1e9:.1f} GB/s)."
        ),
        "",
        "| dtype | beams | generate s/token | Answerer s/token | floor s/token | Answerer / floor | bandwidth around it |",
        "|---|---|---|---|---|---|---|",
    ]
    rows += [
        f"| {name} | {beams} | {plain:.3f} | {now:.3f} | {weights / best:.4f} | {now * best / weights:.1f}x "
        f"| {near / 1e9:.1f} GB/s |"
        for name, beams, plain, now, weights, near in speeds
    ]
    rows += [
        "",
        f"| dtype | --eval of {len(examples)} instructions, one at a time | batched by {ANSWER_BATCH_SIZE} | faster | answers that differ |",
        "|---|---|---|---|---|",
    ]
    rows += [
        f"| {name} | {alone:.0f} s | {together:.0f} s | {alone / together:.2f}x | {differ} |"
        for name, alone, together, differ in timings
    ]
    rows += ["", "| dtype | loading the model | then packing its linears (before the first answer) |", "|---|---|---|"]
    rows += [f"| {name} | {loading:.1f} s | {packing:.2f} s |" for name, loading, packing in setups]
    if kernel_rates:
        rows += [
            "",
            "| dtype | rows per product | packed products read the weights at | of the highest bandwidth | bandwidth around it |",
        ]
        rows += ["|---|---|---|---|---|"]
        rows += [
            f"| {name} | {n} | {rate / 1e9:.1f} GB/s | {rate / best:.0%} | {near / 1e9:.1f} GB/s |"
            for name, n, rate, near in kernel_rates
        ]
    return rows


def describe_machine(device: str) -> str:
    import torch

    if device == "cuda":
        return f"{torch.cuda.get_device_name()}, torch {torch.__version__}"
    cpu = next(
        (line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
         if line.startswith("model name")),
        "unknown CPU",
    )  # fmt: skip
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    return f"{cpu}, {os.cpu_count()} cores, {memory / 2**30:.1f} GiB, torch {torch.__version__}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    parser.add_argument("--shapes", nargs="+", choices=list(SHAPES), default=["350m", "1b5"])
    parser.add_argument("--modes", nargs="+", choices=["full", "lora"], default=["full", "lora"])
    parser.add_argument("--precision", nargs="+", choices=["fp32", "bf16"], default=None, help="default: fp32 bf16")
    parser.add_argument("--optim", default="adamw_torch_fused", help="the Trainer's optimizer name")
    parser.add_argument("--steps", type=int, default=3, help="timed training steps (after one warm-up step)")
    parser.add_argument(
        "--answers",
        type=int,
        default=1,
        help="answers per row (5 beams, 32 tokens); evaluation lines of --tutorial-run",
    )
    parser.add_argument("--no-grouping", action="store_true", help="shuffle freely instead of grouping by length")
    parser.add_argument("--full-logits", action="store_true", help="output layer on every position, not answers only")
    parser.add_argument("--profile", action="store_true", help="print the costliest ops of the timed steps")
    parser.add_argument("--unfused", action="store_true", help="BLOOM's own GELU and dense lookup gradient")
    parser.add_argument("--slow-bf16", action="store_true", help="run bf16 rows even where bf16 is over 3x slower")
    parser.add_argument("--tutorial-run", choices=list(SHAPES), help="instead: the whole CLI run on this shape")
    parser.add_argument("--epochs", type=int, default=4, help="with --tutorial-run")
    parser.add_argument(
        "--whole-run",
        choices=list(SHAPES),
        help="instead: one epoch of instruct_ger.py as a user runs it, and the peer",
    )
    parser.add_argument(
        "--variant", action="append", help="with --whole-run: extra instruct_ger.py flags for one more row (repeatable)"
    )
    parser.add_argument("--peer-python", help="with --whole-run: a Python that has trl, to run bench/trl_peer.py")
    parser.add_argument("--decoding", choices=list(SHAPES), help="instead: answering speed on this shape")
    parser.add_argument("--scratch", default=None, help="folder for Trainer output and the saved random model")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--shape", choices=list(SHAPES), help=argparse.SUPPRESS)
    parser.add_argument("--mode", choices=["full", "lora"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    args.precision = args.precision or ["fp32", "bf16"]
    if args.worker:
        args.precision = args.precision[0]
        result = tutorial_worker(args) if args.tutorial_run else train_worker(args)
        print("RESULT " + json.dumps(result), flush=True)
        return
    scratch = tempfile.TemporaryDirectory(prefix="llm-instruct-bench-") if args.scratch is None else None
    args.scratch = args.scratch or scratch.name
    print(f"Machine: {describe_machine(args.device)}", flush=True)
    if args.whole_run:
        rows = whole_run_rows(args)
    elif args.decoding:
        rows = decoding_rows(args)
    else:
        rows = tutorial_row(args) if args.tutorial_run else training_rows(args)
    print()
    print("\n".join(rows))


if __name__ == "__main__":
    main()
