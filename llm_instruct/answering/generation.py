"""Answering one instruction: prompt ids in, the answer out.

Generation stops at EOS and, for a model whose trained answers are all one line, at the
first token whose text holds a newline. Both are read off the loaded tokenizer rather
than hard-coded, so any vocabulary works. A model trained on multi-line answers stops at
EOS (and --stop strings) only, and its answer is kept as it is, newlines included.
"""

import time
from dataclasses import dataclass

import torch
from transformers import TextStreamer

from ..cli import log
from ..data.prompt import PromptStyle
from ..data.tokens import cut_prompt, encode_prompt, leading_special_tokens


@dataclass(frozen=True)
class GenerationSettings:
    max_new_tokens: int = 200
    num_beams: int = 5
    # 0 (off): with n=2, as in the tutorial, no pair of tokens may repeat, the prompt's
    # included, so an answer like "['A', 'B', 'C']" (", '" recurs) could never come out.
    no_repeat_ngram_size: int = 0
    sample: bool = False
    temperature: float = 1.0
    top_p: float = 1.0
    stop: tuple[str, ...] = ()


@dataclass(frozen=True)
class Answer:
    text: str
    new_tokens: int
    seconds: float
    prompt_tokens_cut: int = 0  # tokens cut from the front of a prompt too long for the model


def context_length(config) -> int | None:
    """Positions the model can attend to; None where it has no limit (BLOOM's ALiBi)."""
    return getattr(config, "max_position_embeddings", None)


def fit_to_context(prompt_length: int, max_new_tokens: int, context: int | None) -> tuple[int, int]:
    """(prompt tokens to keep, new tokens allowed) so that both fit the model's positions.

    The answer keeps its full length where the prompt can give way; a prompt is never cut to
    less than half the context, so a long instruction keeps its end and the cue to answer.
    """
    if context is None or prompt_length + max_new_tokens <= context:
        return prompt_length, max_new_tokens
    kept = min(prompt_length, max(context - max_new_tokens, context // 2))
    return kept, min(max_new_tokens, context - kept)


def newline_token_ids(tokenizer) -> list[int]:
    decoded = tokenizer.batch_decode([[token_id] for token_id in range(len(tokenizer))])
    return [token_id for token_id, text in enumerate(decoded) if "\n" in text]


def stop_token_ids(tokenizer, multiline: bool = False) -> list[int]:
    if multiline:
        return [tokenizer.eos_token_id]
    return [tokenizer.eos_token_id] + [i for i in newline_token_ids(tokenizer) if i != tokenizer.eos_token_id]


def cut_answer(text: str, stop: tuple[str, ...] = (), multiline: bool = False) -> str:
    """The answer: text up to the first stop string and, for one-line answers, the first newline."""
    end = len(text)
    for marker in stop if multiline else ("\n", *stop):
        found = text.find(marker)
        if found != -1:
            end = min(end, found)
    return text[:end]


def held_back(text: str, markers: tuple[str, ...]) -> int:
    """How many characters at the end of text could still turn out to begin a marker."""
    return max((k for marker in markers for k in range(1, len(marker)) if text.endswith(marker[:k])), default=0)


class AnswerStreamer(TextStreamer):
    """Prints the answer while it is generated, exactly as the finished answer reads.

    Text that may still become a stop string (the "Sieh d" of "Sieh die") and trailing
    spaces, which the finished answer strips, wait until the next piece decides them.
    """

    def __init__(self, tokenizer, stop: tuple[str, ...] = (), multiline: bool = False):
        super().__init__(tokenizer, skip_prompt=True, skip_special_tokens=True)
        self.stop, self.multiline, self.text, self.printed = stop, multiline, "", 0
        self.markers = stop if multiline else ("\n", *stop)

    def on_finalized_text(self, text: str, stream_end: bool = False):
        self.text += text
        visible = cut_answer(self.text, self.stop, self.multiline)
        if visible == self.text and not stream_end:  # no marker yet, but its beginning may be arriving
            visible = visible[: len(visible) - held_back(visible, self.markers)]
        answer = visible.strip()
        print(answer[self.printed :], end="", flush=True)
        self.printed = len(answer)
        if stream_end:
            print(flush=True)


class Answerer:
    """Wraps instructions in the model's prompt style and generates their answers."""

    def __init__(self, model, tokenizer, style: PromptStyle, settings: GenerationSettings):
        self.model, self.tokenizer, self.style, self.settings = model, tokenizer, style, settings
        self.multiline = style.multiline_answers
        self.stop_ids = stop_token_ids(tokenizer, self.multiline)
        self.context = context_length(model.config)
        self.special_ids = set(tokenizer.all_special_ids)

    def _generate_kwargs(self, max_new_tokens: int) -> dict:
        settings = self.settings
        kwargs = {
            "max_new_tokens": max_new_tokens,
            "num_beams": settings.num_beams,
            "do_sample": settings.sample,
            "no_repeat_ngram_size": settings.no_repeat_ngram_size,
            "eos_token_id": self.stop_ids,
            "pad_token_id": self.tokenizer.pad_token_id,
            "use_cache": True,  # also for model directories saved with the cache switched off
        }
        if settings.sample:
            kwargs.update(temperature=settings.temperature, top_p=settings.top_p)
        if settings.stop:
            kwargs.update(stop_strings=list(settings.stop), tokenizer=self.tokenizer)
        return kwargs

    @torch.inference_mode()
    def answer(self, instruction: str, input_text: str = "", *, stream: bool = False, where: str = "") -> Answer:
        """where: the instruction's place (stdin:3, FILE:LINE) for the warning about a prompt cut to fit."""
        ids = encode_prompt(self.tokenizer, self.style.format(instruction, input_text))
        # A prompt longer than the model's positions is cut at the front, as training cuts it.
        kept, max_new_tokens = fit_to_context(len(ids), self.settings.max_new_tokens, self.context)
        cut = len(ids) - kept
        if cut:
            log(
                f"Warning: {where or 'a prompt'}: the prompt has {len(ids)} tokens, more than the model's "
                f"{self.context} positions hold beside the answer; {cut} tokens were cut from its beginning."
            )
            ids = cut_prompt(ids, kept, leading_special_tokens(ids, self.special_ids))
        prompt_ids = torch.tensor([ids], device=self.model.device)
        streamer = AnswerStreamer(self.tokenizer, self.settings.stop, self.multiline) if stream else None
        started = time.perf_counter()
        output = self.model.generate(
            input_ids=prompt_ids,
            attention_mask=torch.ones_like(prompt_ids),
            streamer=streamer,
            **self._generate_kwargs(max_new_tokens),
        )
        seconds = time.perf_counter() - started
        new_ids = output[0, prompt_ids.shape[1] :].tolist()
        text = self.tokenizer.decode(new_ids, skip_special_tokens=True)
        answer = cut_answer(text, self.settings.stop, self.multiline).strip()
        return Answer(answer, len(new_ids), seconds, prompt_tokens_cut=cut)
