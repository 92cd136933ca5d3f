"""How much memory and disk a run needs, estimated from the model's shape alone (no weights loaded).

The peak of a training step is the weights, the gradients of what trains, the optimizer
state, the activations kept for the backward pass and the runtime itself. accelerate's
estimate counts the first three; the rest was measured here on random BLOOMs of the
tutorial's shapes (bench/benchmark.py prints estimate and measurement side by side).
"""

from dataclasses import dataclass

GIB = 2**30

# Optimizer state per trained parameter, in bytes: AdamW keeps two fp32 moments; Adafactor
# keeps a row and a column factor per matrix, next to nothing per parameter; bitsandbytes'
# 8-bit AdamW keeps two one-byte moments.
OPTIMIZER_STATE_BYTES = {
    "adamw_torch_fused": 8.0,
    "adamw_torch": 8.0,
    "adafactor": 0.05,
    "adamw_bnb_8bit": 2.0,
}
# The unfused AdamW computes its update in temporary tensors the size of the gradients.
OPTIMIZER_TEMPORARY_BYTES = {"adamw_torch": 4.0}
# Python, torch and transformers with their libraries (a CPU process), or the CUDA context.
RUNTIME_BYTES = {"cpu": 0.7 * GIB, "cuda": 0.6 * GIB}
# Activations kept per token and layer, in units of the hidden size, for 16-bit activations
# (Korthikanti et al., "Reducing Activation Recomputation in Large Transformer Models": 34 h
# bytes plus 5 bytes per head and position of the attention scores); fp32 doubles them.
ACTIVATION_BYTES_PER_HIDDEN = 34
ATTENTION_BYTES_PER_HEAD_AND_POSITION = 5


@dataclass(frozen=True)
class MemoryPlan:
    """What a run's memory depends on. trainable None: every parameter trains (full fine-tuning)."""

    parameters: int
    trainable: int | None
    hidden_size: int
    layers: int
    heads: int
    vocab_size: int
    batch_size: int
    sequence_length: int  # the longest example: the widest batch
    device: str
    lora: bool
    mixed_precision: bool  # --bf16 or --fp16
    optimizer: str
    gradient_checkpointing: bool = False
    answer_logits_only: bool = True  # the output layer runs on answer positions alone (answer_loss)
    answer_positions: int | None = None  # per batch, where answer_logits_only; None: all positions

    @property
    def trained(self) -> int:
        return self.parameters if self.trainable is None else self.trainable


def weight_bytes(plan: MemoryPlan) -> float:
    # LoRA on CUDA with mixed precision keeps the frozen base in 16 bits (device.base_weights_dtype).
    half_base = plan.lora and plan.device == "cuda" and plan.mixed_precision
    frozen = plan.parameters - (plan.trainable or 0) if plan.lora else 0
    return 4.0 * plan.trained + (2.0 if half_base else 4.0) * frozen


def activation_bytes(plan: MemoryPlan) -> float:
    tokens = plan.batch_size * plan.sequence_length
    width = 1 if plan.mixed_precision else 2  # 16-bit or 32-bit activations
    per_token_layer = width * (
        ACTIVATION_BYTES_PER_HIDDEN * plan.hidden_size
        + ATTENTION_BYTES_PER_HEAD_AND_POSITION * plan.heads * plan.sequence_length
    )
    if plan.gradient_checkpointing:
        # Only each layer's input is kept; one layer's activations are rebuilt at a time.
        return tokens * (plan.layers * 4 * plan.hidden_size + per_token_layer)
    return tokens * plan.layers * per_token_layer


def logits_bytes(plan: MemoryPlan) -> float:
    """Logits, their softmax and their gradient, in fp32, for the positions the loss needs."""
    positions = plan.answer_positions if plan.answer_logits_only and plan.answer_positions else None
    positions = positions or plan.batch_size * plan.sequence_length
    return 3 * 4.0 * positions * plan.vocab_size


def estimate_peak_bytes(plan: MemoryPlan) -> float:
    """The peak of one training process, in bytes."""
    trained = plan.trained
    state = OPTIMIZER_STATE_BYTES.get(plan.optimizer, 8.0) + OPTIMIZER_TEMPORARY_BYTES.get(plan.optimizer, 0.0)
    # Mixed precision keeps no 16-bit copy of the weights (training/mixed_precision.py).
    return (
        RUNTIME_BYTES[plan.device]
        + weight_bytes(plan)
        + (4.0 + state) * trained
        + activation_bytes(plan)
        + logits_bytes(plan)
    )


def model_directory_bytes(parameters: int, adapter_parameters: int | None = None) -> float:
    """The saved model: fp32 weights, or the adapter alone."""
    return 4.0 * (adapter_parameters if adapter_parameters is not None else parameters)


def checkpoint_bytes(plan: MemoryPlan) -> float:
    """Weights (or adapters) and optimizer state, as the Trainer writes them."""
    saved_weights = 4.0 * (plan.trained if plan.lora else plan.parameters)
    return saved_weights + OPTIMIZER_STATE_BYTES.get(plan.optimizer, 8.0) * plan.trained


def measured_peak_bytes(device: str) -> float:
    """This process's peak so far: allocated GPU memory on CUDA, resident memory on a CPU."""
    # Imported here: the estimates above are plain arithmetic, testable without torch.
    if device == "cuda":
        import torch

        return float(torch.cuda.max_memory_allocated())
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024.0  # Linux reports KiB
