"""The run's plan, made before any weight loads: examples, tokens, steps, memory, disk, time.

The model is built on the meta device (shapes without storage) to count its parameters and,
with --lora, its adapters; everything else comes from the tokenized examples. The same plan
feeds --dry-run, the preflight checks and the optimizer choice, so that --dry-run shows the
verdict a real run would meet.
"""

import dataclasses
import math
import time
from dataclasses import dataclass

import torch
from accelerate import init_empty_weights
from transformers import AutoModelForCausalLM

from ..data.batching import epoch_batches, run_token_counts
from ..data.tokens import EncodedExamples, accepts_position_mask
from ..models.lora import add_lora
from . import preflight
from .memory import GIB, MemoryPlan, checkpoint_bytes, estimate_peak_bytes, model_directory_bytes

# Share of the measured matrix-multiply rate that training reaches (bench/benchmark.py: 40-60%
# on CPUs); a duration from it is a rough guide, not a promise.
ASSUMED_MFU = 0.45
# Without an evaluation split, the evaluation by generation answers training examples for at most
# this share of the training time (training/scoring.py), and the evaluation loss is skipped: on
# the training examples it would repeat the training loss at a third of an epoch's cost.
EVALUATION_SHARE = 0.05


@dataclass(frozen=True)
class RunPlan:
    train_examples: int
    eval_examples: int
    evaluation_sampled: bool  # no evaluation split: training examples are answered within EVALUATION_SHARE
    epochs: int
    precision: str  # fp32, bf16 or fp16 (mixed precision)
    real_tokens: int  # over all epochs
    padded_tokens: int  # over all epochs, as the batches are formed
    optimizer_steps: int
    memory: MemoryPlan
    available_memory: float
    memory_what: str  # what available_memory is: "available RAM", "free GPU memory"
    model_dir_bytes: float
    checkpoint_bytes: float
    checkpoints_possible: bool
    free_disk: float
    output_dir: str
    processes: int = 1  # processes that share this memory: those of one machine on a CPU, one per GPU
    seconds: float | None = None  # rough training duration, where a rate is known

    @property
    def padding_share(self) -> float:
        return 1 - self.real_tokens / self.padded_tokens

    @property
    def peak_bytes(self) -> float:
        return estimate_peak_bytes(self.memory) * self.processes

    @property
    def disk_bytes(self) -> float:
        # While a checkpoint replaces the older one, both are on disk.
        return self.model_dir_bytes + (2 * self.checkpoint_bytes if self.checkpoints_possible else 0)

    @property
    def memory_verdict(self) -> preflight.Verdict:
        return preflight.memory_verdict(self.memory, self.available_memory, self.memory_what, self.processes)

    @property
    def disk_verdict(self) -> preflight.Verdict:
        return preflight.disk_verdict(self.disk_bytes, self.free_disk, self.output_dir)


@dataclass(frozen=True)
class ModelShape:
    parameters: int
    trainable: int | None  # None: every parameter trains
    answer_logits_only: bool  # whether the model can run its output layer on answer positions alone


def model_shape(config, lora_settings=None, trust_remote_code: bool = False) -> ModelShape:
    """Parameters (and LoRA's trainable ones) from the config alone, on the meta device."""
    with init_empty_weights():
        model = AutoModelForCausalLM.from_config(config, trust_remote_code=trust_remote_code)
    model.tie_weights()  # a tied output layer is no parameter of its own
    total = sum(parameter.numel() for parameter in model.parameters())
    trainable = None
    if lora_settings is not None:
        model = add_lora(model, lora_settings, "")
        trainable = sum(parameter.numel() for parameter in model.parameters() if parameter.requires_grad)
    return ModelShape(total, trainable, accepts_position_mask(model))


def answer_positions(train_set: EncodedExamples, batches: list[list[int]]) -> int:
    """Positions whose logits the loss needs, in the batch that has most."""
    return max(
        sum(len(train_set.features[i]["input_ids"]) - train_set.features[i]["prompt_length"] for i in batch)
        for batch in batches
    )


def measured_rate(device: str) -> float:
    """FLOP/s of a quick matrix product on the device (fp32 on a CPU, bf16 on CUDA)."""
    dtype = torch.bfloat16 if device == "cuda" else torch.float32
    size = 4096 if device == "cuda" else 1024
    a = torch.randn(size, size, device=device, dtype=dtype)
    torch.mm(a, a)
    if device == "cuda":
        torch.cuda.synchronize()
    started = time.perf_counter()
    for _ in range(3):
        torch.mm(a, a)
    if device == "cuda":
        torch.cuda.synchronize()
    return 3 * 2 * size**3 / (time.perf_counter() - started)


def training_seconds(plan: MemoryPlan, padded_tokens: int, rate: float) -> float:
    flops_per_token = (4 if plan.lora else 6) * plan.parameters
    return padded_tokens * flops_per_token / (rate * ASSUMED_MFU)


def steps(examples: int, batch_size: int, processes: int, accumulation: int, epochs: int) -> int:
    batches_per_process = math.ceil(examples / (batch_size * processes))
    return epochs * math.ceil(batches_per_process / accumulation)


def plan_run(args, config, instructions, train_set: EncodedExamples, device: str, processes: int, lora_settings):
    """The plan for these flags on this machine; args.optim "auto" is decided here.

    processes: this machine's processes of the run, which share its RAM; on CUDA each has a GPU of its own.
    """
    shape = model_shape(config, lora_settings, args.trust_remote_code)
    batches = epoch_batches(train_set.lengths, args.batch_size, args.seed, 0, args.group_by_length)
    real, padded = run_token_counts(train_set.lengths, args.batch_size, args.seed, args.epochs, args.group_by_length)
    sharing = preflight.processes_sharing_memory(device, processes)
    memory = MemoryPlan(
        parameters=shape.parameters,
        trainable=shape.trainable,
        hidden_size=getattr(config, "hidden_size", 0),
        layers=getattr(config, "num_hidden_layers", 0),
        heads=getattr(config, "num_attention_heads", 0),
        vocab_size=config.vocab_size,
        batch_size=args.batch_size,
        sequence_length=max(train_set.lengths),
        device=device,
        lora=args.lora,
        mixed_precision=args.precision != "fp32",
        optimizer=args.optim,
        gradient_checkpointing=args.gradient_checkpointing,
        answer_logits_only=shape.answer_logits_only,
        answer_positions=answer_positions(train_set, batches),
    )
    available, what = preflight.available_memory(device)
    optimizer, notice = preflight.choose_optimizer(args.optim, memory, available, sharing)
    memory = dataclasses.replace(memory, optimizer=optimizer)
    saved = model_directory_bytes(shape.parameters, shape.trainable if args.save_adapter else None)
    plan = RunPlan(
        train_examples=len(instructions.train),
        eval_examples=len(instructions.eval),
        evaluation_sampled=instructions.eval_is_train,
        epochs=args.epochs,
        precision=args.precision,
        real_tokens=real,
        padded_tokens=padded,
        optimizer_steps=steps(
            len(train_set.lengths), args.batch_size, processes, args.gradient_accumulation_steps, args.epochs
        ),
        memory=memory,
        available_memory=available,
        memory_what=what,
        model_dir_bytes=saved,
        checkpoint_bytes=checkpoint_bytes(memory),
        checkpoints_possible=not args.no_checkpoints and args.epochs > 1,
        free_disk=preflight.free_disk(args.output_dir),
        output_dir=str(args.output_dir),
        processes=sharing,
        seconds=training_seconds(memory, padded, measured_rate(device)),
    )
    return plan, notice


def describe_duration(seconds: float) -> str:
    return f"about {seconds:.0f} seconds" if seconds < 90 else f"about {seconds / 60:.0f} minutes"


def describe_evaluation(plan: RunPlan) -> str:
    if plan.evaluation_sampled:
        share = f"{EVALUATION_SHARE:.0%} of the training time"
        if plan.seconds is not None:
            share += f", {describe_duration(EVALUATION_SHARE * plan.seconds)}"
        return (
            f"Evaluation: no evaluation split, so training examples drawn at random are answered for at most "
            f"{share}; no evaluation loss"
        )
    return f"Evaluation: {plan.eval_examples} answers after training, and the evaluation loss after each epoch"


def describe_verdicts(plan: RunPlan, optimizer_notice: str | None) -> list[str]:
    """What the preflight would decide, as a real run would meet it."""
    lines = [f"Preflight: {optimizer_notice.removeprefix('Notice: ')}"] if optimizer_notice else []
    for verdict in (plan.memory_verdict, plan.disk_verdict):
        if verdict.refused:
            lines.append(f"Preflight: the run would be refused: {verdict.message}")
        elif verdict.message:
            lines.append(f"Preflight: the run would go ahead with a warning: {verdict.message}")
    return lines or ["Preflight: the run fits in memory and on disk"]


def format_plan(plan: RunPlan, optimizer_notice: str | None = None) -> str:
    memory = plan.memory
    trainable = memory.parameters if memory.trainable is None else memory.trainable
    precision = plan.precision if plan.precision == "fp32" else f"{plan.precision} mixed precision"
    mode = "LoRA" if memory.lora else "full fine-tuning"
    processes = f" for {plan.processes} processes" if plan.processes > 1 else ""
    epochs = f"{plan.epochs} epoch{'s' if plan.epochs != 1 else ''}"
    lines = [
        f"Examples: {plan.train_examples} for training, {plan.eval_examples} for evaluation",
        (
            f"Tokens over {epochs}: {plan.real_tokens:,} real, {plan.padded_tokens:,} in batches "
            f"({plan.padding_share:.1%} padding)"
        ),
        f"Optimizer steps: {plan.optimizer_steps}",
        f"Parameters: {memory.parameters:,} in total, {trainable:,} trained ({mode}, {precision}, {memory.optimizer})",
        (
            f"Memory: about {plan.peak_bytes / GIB:.1f} GiB at the peak on {memory.device}{processes}; "
            f"{plan.available_memory / GIB:.1f} GiB {plan.memory_what}"
        ),
        (
            f"Disk: model directory about {plan.model_dir_bytes / GIB:.1f} GiB, one checkpoint about "
            f"{plan.checkpoint_bytes / GIB:.1f} GiB; {plan.free_disk / GIB:.1f} GiB free in {plan.output_dir}"
        ),
    ]
    if plan.seconds is not None:
        lines.append(
            f"Training time: roughly {describe_duration(plan.seconds).removeprefix('about ')} at {ASSUMED_MFU:.0%} "
            f"of this machine's measured matrix-multiply rate, plus loading, evaluation and saving"
        )
    lines.append(describe_evaluation(plan))
    lines += describe_verdicts(plan, optimizer_notice)
    return "\n".join(lines)
