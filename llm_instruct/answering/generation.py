"""Answering one instruction: prompt ids in, the answer out.

Generation stops at EOS and, for a model whose trained answers are all one line, at the
first token whose text holds a newline. Both are read off the loaded tokenizer rather
than hard-coded, so any vocabulary works. A model trained on multi-line answers stops at
EOS (and --stop strings) only, and its answer is kept as it is, newlines included.
"""

import inspect
import time
from dataclasses import dataclass

import torch
from transformers import DynamicCache, TextStreamer

from ..cli import log
from ..data.chat_template import ChatFormat, chat_format, conversation_messages
from ..data.prompt import PromptStyle
from ..data.tokens import cut_prompt, leading_special_tokens
from ..models.activations import fuse_activations
from .packed import pack_linears
from .requests import Request


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


def answer_stop_ids(tokenizer, chat: ChatFormat, multiline: bool) -> list[int]:
    """Where an answer ends: the chat template's end of turn, and a newline for one-line answers."""
    return list(dict.fromkeys(chat.stop_ids(tokenizer) + stop_token_ids(tokenizer, multiline)))


def until_stop(new_ids: list[int], stop_ids: list[int]) -> list[int]:
    """The generated ids up to and with the first stop id."""
    stops = set(stop_ids)
    return next((new_ids[: index + 1] for index, token in enumerate(new_ids) if token in stops), new_ids)


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
    """Wraps instructions in the model's prompt style and generates their answers.

    Beam search runs the prompt through the model once and hands the beams copies of its
    cache: generate alone would run it once per beam, the larger part of a short answer's time.
    On a CPU the linear layers are prepacked for oneDNN (packed.py); BLOOM's GELU is the fused
    kernel it was trained with (models/activations.py). Several instructions can be answered at
    once (answer_many), left-padded to a common length.
    """

    def __init__(self, model, tokenizer, style: PromptStyle, settings: GenerationSettings, use_chat_template=True):
        """use_chat_template: prompt through the tokenizer's chat template where it has one (the
        one the model was trained with); otherwise through a template written for style."""
        pack_linears(model)
        fuse_activations(model)
        self.model, self.tokenizer, self.style, self.settings = model, tokenizer, style, settings
        self.multiline = style.multiline_answers
        self.chat = chat_format(tokenizer, style, use_chat_template)
        self.stop_ids = answer_stop_ids(tokenizer, self.chat, self.multiline)
        self.context = context_length(model.config)
        self.special_ids = set(tokenizer.all_special_ids)
        forward = inspect.signature(model.forward).parameters
        self.prefill_arguments = {"logits_to_keep": 1} if "logits_to_keep" in forward else {}
        self.takes_positions = "position_ids" in forward

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

    def prompt_ids(self, request: Request) -> tuple[list[int], int]:
        """The prompt's ids, cut at the front where it would not fit the model's positions beside
        the answer (as training cuts it), and the new tokens left for the answer."""
        ids = self.chat.prompt_ids(self.tokenizer, conversation_messages(request))
        kept, max_new_tokens = fit_to_context(len(ids), self.settings.max_new_tokens, self.context)
        cut = len(ids) - kept
        if cut:
            log(
                f"Warning: {request.where or 'a prompt'}: the prompt has {len(ids)} tokens, more than the model's "
                f"{self.context} positions hold beside the answer; {cut} tokens were cut from its beginning."
            )
            ids = cut_prompt(ids, kept, leading_special_tokens(ids, self.special_ids))
        return ids, max_new_tokens

    def fits(self, request: Request) -> bool:
        """Whether the request's prompt and a full-length answer fit the model's positions."""
        if self.context is None:
            return True
        prompt = self.chat.prompt_ids(self.tokenizer, conversation_messages(request))
        return len(prompt) + self.settings.max_new_tokens <= self.context

    def _prefilled(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> dict:
        """generate's cache argument: all but the last prompt token, run once, repeated for the beams."""
        beams = self.settings.num_beams
        if beams == 1 or input_ids.shape[1] < 2:
            return {}
        cache = DynamicCache(config=self.model.config)
        arguments = dict(self.prefill_arguments)
        if self.takes_positions:  # left padding: each row counts its positions from its first real token
            arguments["position_ids"] = (attention_mask[:, :-1].cumsum(-1) - 1).clamp(min=0)
        self.model(
            input_ids=input_ids[:, :-1], attention_mask=attention_mask[:, :-1], cache=cache, use_cache=True, **arguments
        )
        cache.batch_repeat_interleave(beams)
        return {"cache": cache}

    def _generate(self, prompts: list[list[int]], max_new_tokens: int, streamer=None) -> list[list[int]]:
        """New token ids for each prompt, prompts left-padded to a common length."""
        width = max(len(ids) for ids in prompts)
        pad = self.tokenizer.pad_token_id
        input_ids = torch.tensor([[pad] * (width - len(ids)) + ids for ids in prompts], device=self.model.device)
        attention_mask = torch.tensor(
            [[0] * (width - len(ids)) + [1] * len(ids) for ids in prompts], device=self.model.device
        )
        output = self.model.generate(
            input_ids=input_ids,
            attention_mask=attention_mask,
            streamer=streamer,
            **self._prefilled(input_ids, attention_mask),
            **self._generate_kwargs(max_new_tokens),
        )
        return [row[width:].tolist() for row in output]

    def _answer(self, new_ids: list[int], seconds: float) -> Answer:
        new_ids = until_stop(new_ids, self.stop_ids)  # a row that stopped early is padded to the longest
        text = self.tokenizer.decode(new_ids, skip_special_tokens=True)
        return Answer(cut_answer(text, self.settings.stop, self.multiline).strip(), len(new_ids), seconds)

    @torch.inference_mode()
    def answer(self, request: Request | str, input_text: str = "", *, stream: bool = False) -> Answer:
        """The answer to a request, or to an instruction given as text with its input; with
        stream, printed as it comes."""
        if isinstance(request, str):
            request = Request(request, input_text)
        ids, max_new_tokens = self.prompt_ids(request)
        streamer = AnswerStreamer(self.tokenizer, self.settings.stop, self.multiline) if stream else None
        started = time.perf_counter()
        [new_ids] = self._generate([ids], max_new_tokens, streamer)
        return self._answer(new_ids, time.perf_counter() - started)

    @torch.inference_mode()
    def answer_many(self, requests: list[Request]) -> list[Answer]:
        """Answers to requests, generated together where they may run as long as each other;
        seconds are shared out evenly."""
        prompts = [self.prompt_ids(request) for request in requests]
        limits = {limit for _, limit in prompts}
        if len(limits) > 1:  # a prompt cut to fit the model's positions also has fewer new tokens left
            return [self.answer(request) for request in requests]
        started = time.perf_counter()
        new_ids = self._generate([ids for ids, _ in prompts], limits.pop())
        seconds = (time.perf_counter() - started) / len(requests)
        return [self._answer(ids, seconds) for ids in new_ids]
