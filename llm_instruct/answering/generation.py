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

from ..data.prompt import PromptStyle
from ..data.tokens import encode_prompt


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


class AnswerStreamer(TextStreamer):
    """Prints the answer while it is generated, up to where cut_answer ends it."""

    def __init__(self, tokenizer, stop: tuple[str, ...] = (), multiline: bool = False):
        super().__init__(tokenizer, skip_prompt=True, skip_special_tokens=True)
        self.stop, self.multiline, self.text, self.printed = stop, multiline, "", 0

    def on_finalized_text(self, text: str, stream_end: bool = False):
        self.text += text
        visible = cut_answer(self.text, self.stop, self.multiline)
        if len(visible) > self.printed:
            print(visible[self.printed :], end="", flush=True)
            self.printed = len(visible)
        if stream_end:
            print(flush=True)


class Answerer:
    """Wraps instructions in the model's prompt style and generates their answers."""

    def __init__(self, model, tokenizer, style: PromptStyle, settings: GenerationSettings):
        self.model, self.tokenizer, self.style, self.settings = model, tokenizer, style, settings
        self.multiline = style.multiline_answers
        self.stop_ids = stop_token_ids(tokenizer, self.multiline)

    def _generate_kwargs(self) -> dict:
        settings = self.settings
        kwargs = {
            "max_new_tokens": settings.max_new_tokens,
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
    def answer(self, instruction: str, input_text: str = "", *, stream: bool = False) -> Answer:
        prompt = self.style.format(instruction, input_text)
        prompt_ids = torch.tensor([encode_prompt(self.tokenizer, prompt)], device=self.model.device)
        streamer = AnswerStreamer(self.tokenizer, self.settings.stop, self.multiline) if stream else None
        started = time.perf_counter()
        output = self.model.generate(
            input_ids=prompt_ids,
            attention_mask=torch.ones_like(prompt_ids),
            streamer=streamer,
            **self._generate_kwargs(),
        )
        seconds = time.perf_counter() - started
        new_ids = output[0, prompt_ids.shape[1] :].tolist()
        text = self.tokenizer.decode(new_ids, skip_special_tokens=True)
        return Answer(cut_answer(text, self.settings.stop, self.multiline).strip(), len(new_ids), seconds)
