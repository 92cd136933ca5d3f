"""The Hugging Face Trainer as this project runs it: its arguments, batches and callbacks."""

import gc
from pathlib import Path

import torch
from transformers import Trainer, TrainingArguments

from ..data.batching import EpochSampler
from ..data.tokens import CompletionOnlyCollator, EncodedExamples, accepts_position_mask
from .answer_loss import answer_loss
from .output_gradient import drop_output_gradient


def training_arguments(args, checkpoint_dir: Path, device: str, optimizer: str, evaluate: bool) -> TrainingArguments:
    """evaluate: compute the evaluation loss after every epoch (there is an evaluation split)."""
    return TrainingArguments(
        output_dir=str(checkpoint_dir),
        num_train_epochs=args.epochs,
        learning_rate=args.learning_rate,
        weight_decay=args.weight_decay,
        optim=optimizer,
        per_device_train_batch_size=args.batch_size,
        per_device_eval_batch_size=args.batch_size,
        gradient_accumulation_steps=args.gradient_accumulation_steps,
        bf16=args.precision == "bf16",
        fp16=args.precision == "fp16",
        activation_checkpointing=args.gradient_checkpointing,
        # Non-reentrant checkpointing also works when only LoRA adapters require gradients.
        activation_checkpointing_kwargs={"use_reentrant": False},
        logging_strategy="epoch",
        eval_strategy="epoch" if evaluate else "no",
        # Checkpoints are written when checkpoints.CheckpointPolicy or a Ctrl-C asks for one.
        save_strategy="no",
        save_total_limit=1,  # the 1b5 model with optimizer state makes a 16 GB checkpoint
        seed=args.seed,
        use_cpu=device == "cpu",
        remove_unused_columns=False,  # the collator needs prompt_length
        prediction_loss_only=True,  # evaluation needs the loss alone, not every logit
        ddp_find_unused_parameters=False,  # every trainable weight is used in every step
        report_to="none",
    )


class InstructionTrainer(Trainer):
    """A Trainer whose training batches come from batching.EpochSampler."""

    def __init__(self, *args, train_sampler: EpochSampler, **kwargs):
        super().__init__(*args, **kwargs)
        self.train_sampler = train_sampler

    def _get_train_sampler(self, train_dataset=None):
        return self.train_sampler


def build_trainer(
    model,
    tokenizer,
    training_args,
    train_set: EncodedExamples,
    eval_set: EncodedExamples | None,
    group_by_length: bool,
    callbacks=(),
    answer_logits_only: bool = True,
) -> InstructionTrainer:
    """answer_logits_only: run the output layer on answer positions alone, where the model allows it."""
    sampler = EpochSampler(
        train_set.lengths, training_args.per_device_train_batch_size, training_args.seed, group_by_length
    )
    answer_logits_only = answer_logits_only and accepts_position_mask(model)
    return InstructionTrainer(
        model=model,
        args=training_args,
        train_dataset=train_set.features,
        eval_dataset=eval_set.features if eval_set is not None else None,
        processing_class=tokenizer,
        data_collator=CompletionOnlyCollator(tokenizer.pad_token_id, mark_predicted_positions=answer_logits_only),
        compute_loss_func=answer_loss if answer_logits_only else None,
        callbacks=list(callbacks),
        train_sampler=sampler,
    )


def release_training_state(trainer: Trainer) -> None:
    """Drop optimizer state and gradients, the largest part of training memory (12 of 16 bytes a
    weight with AdamW), before saving, evaluating and merging need room of their own."""
    optimizer = getattr(trainer.optimizer, "optimizer", trainer.optimizer)
    if optimizer is not None and hasattr(optimizer, "state"):
        optimizer.state.clear()
    trainer.optimizer = trainer.lr_scheduler = None
    trainer.model.zero_grad(set_to_none=True)
    drop_output_gradient(trainer.model)
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
