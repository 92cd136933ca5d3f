"""Examples to token ids, and the completion-only collator that pads them per batch.

Prompt and answer are tokenized separately and their ids concatenated: tokenizing
the joined text can merge tokens across the boundary (" \n" + "Ja" is not always
" \n" followed by "Ja"), and generation only ever sees the prompt's own ids. A turn
of a conversation is an example of its own, its earlier turns part of its prompt:
rendered and tokenized as a whole, as generation sees them, so only its answer is trained.
"""

import inspect
from dataclasses import dataclass

import torch

from .chat_template import chat_format, conversation_messages
from .instructions import Example, InstructionFileError
from .prompt import PromptStyle

# Label value that torch's cross-entropy (and so every HF causal LM) skips.
IGNORE_INDEX = -100
# The batch key that tells a transformers model at which positions to compute logits.
KEEP = "logits_to_keep"


def leading_special_tokens(ids: list[int], special_ids: set[int]) -> int:
    """How many ids at the start are special tokens (Llama's BOS), which a prompt must keep."""
    count = 0
    while count < len(ids) and ids[count] in special_ids:
        count += 1
    return count


def cut_prompt(prompt_ids: list[int], room: int, keep_first: int) -> list[int]:
    """The prompt within room tokens: its leading special tokens, then the end of its text,
    which holds the instruction and the cue "Antwort: \\n". Generation always sends the BOS,
    so a training prompt must not lose it."""
    return prompt_ids[:keep_first] + prompt_ids[len(prompt_ids) - (room - keep_first) :]


@dataclass(frozen=True)
class EncodedExamples:
    features: list[dict]  # {"input_ids": [...], "prompt_length": n}
    truncated: int  # how many prompts were cut to fit max_length

    @property
    def lengths(self) -> list[int]:
        return [len(feature["input_ids"]) for feature in self.features]


def encode_examples(tokenizer, style: PromptStyle, examples: list[Example], max_length: int, path) -> EncodedExamples:
    """Prompt ids as the tokenizer's chat template gives them (or, without one, the template
    written for style), then the answer's ids and its end-of-turn ids."""
    chat = chat_format(tokenizer, style)
    features, truncated = [], 0
    special_ids = set(tokenizer.all_special_ids)
    for example in examples:
        prompt_ids = chat.prompt_ids(tokenizer, conversation_messages(example))
        answer_ids = chat.answer_ids(tokenizer, example.answer)
        keep_first = leading_special_tokens(prompt_ids, special_ids)
        room_for_prompt = max_length - len(answer_ids)
        if room_for_prompt <= keep_first:
            raise InstructionFileError(
                path,
                f"the answer is {len(answer_ids)} tokens with {chat.end_name(tokenizer)}, leaving no room for the prompt "
                f"within --max-length {max_length}",
                example.location,
            )
        if len(prompt_ids) > room_for_prompt:
            prompt_ids = cut_prompt(prompt_ids, room_for_prompt, keep_first)
            truncated += 1
        features.append({"input_ids": prompt_ids + answer_ids, "prompt_length": len(prompt_ids)})
    return EncodedExamples(features, truncated)


def predicted_positions(labels: torch.Tensor) -> torch.Tensor:
    """True where the next position holds a label: the only logits the loss needs."""
    keep = torch.zeros_like(labels, dtype=torch.bool)
    keep[:, :-1] = labels[:, 1:] != IGNORE_INDEX
    return keep


@dataclass
class CompletionOnlyCollator:
    """Pads a batch to its longest example and trains only the answer tokens.

    Prompt positions and padding positions get IGNORE_INDEX; the answer and its
    EOS keep their ids. Padding is found by position, never by token id, so
    pad_token_id may equal eos_token_id without hiding EOS from the loss.
    With mark_predicted_positions, the batch also says where logits are needed
    (predicted_positions), for models that then compute no others (answer_loss).
    """

    pad_token_id: int
    mark_predicted_positions: bool = False

    def __call__(self, features: list[dict]) -> dict[str, torch.Tensor]:
        width = max(len(feature["input_ids"]) for feature in features)
        shape = (len(features), width)
        input_ids = torch.full(shape, self.pad_token_id, dtype=torch.long)
        attention_mask = torch.zeros(shape, dtype=torch.long)
        labels = torch.full(shape, IGNORE_INDEX, dtype=torch.long)
        for row, feature in enumerate(features):
            ids = torch.tensor(feature["input_ids"], dtype=torch.long)
            length, prompt_length = len(ids), feature["prompt_length"]
            input_ids[row, :length] = ids
            attention_mask[row, :length] = 1
            labels[row, prompt_length:length] = ids[prompt_length:]
        batch = {"input_ids": input_ids, "attention_mask": attention_mask, "labels": labels}
        if self.mark_predicted_positions:
            batch[KEEP] = predicted_positions(labels)
        return batch


def accepts_position_mask(model) -> bool:
    """Whether the model (under a peft wrapper, its base) takes the collator's KEEP mask."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    return KEEP in inspect.signature(base.forward).parameters
