"""The chat template: how a conversation becomes prompt text, saved with the tokenizer for every tool.

Other tools (tokenizer.apply_chat_template, `transformers chat`, vLLM, the converters to
llama.cpp and Ollama) read a model's prompt format from its tokenizer's chat template, not
from prompt_template.json. So training renders every prompt through the very template it
saves, and tokenizes it as apply_chat_template does: what any tool sends is what was trained.

Where the base model brings no chat template, the project writes one from its prompt style:
- a user turn is the style's template with the turn's text as {instruction}, so a single
  turn gives the tutorial's prompt, cue "Antwort: \\n" included; a user message may carry
  an "input" field, which selects the template with {input};
- an assistant turn is its text followed by the EOS token, the end of every trained answer;
- a system message, allowed first only, comes before the first turn, followed by a newline;
- the template starts with the BOS token where the tokenizer puts one first (Llama), so
  that the rendered prompt tokenizes to the ids the tokenizer gives the prompt text itself:
  a Metaspace tokenizer that marks only the text's first word with "▁" (prepend_scheme
  "first") would not mark the word after a BOS written as text, so there the BOS is
  followed by a space, which it turns into that mark.
"""

import re
from dataclasses import dataclass

from ..cli import UserError, log
from .instructions import Example
from .prompt import INPUT, INSTRUCTION, PromptStyle

SYSTEM, USER, ASSISTANT = "system", "user", "assistant"
# Stands for any text where a template's rendering is probed: an answer, or a first message.
PROBE_TEXT = "Antwort"


def jinja_literal(text: str) -> str:
    """text as a Jinja string literal; Jinja reads backslash escapes as Python does."""
    escaped = text.replace("\\", "\\\\").replace('"', '\\"')
    return '"' + escaped.replace("\n", "\\n").replace("\r", "\\r").replace("\t", "\\t") + '"'


def jinja_expression(template: str) -> str:
    """A prompt template as one Jinja expression over the current message."""
    fields = {INSTRUCTION: "message['content']", INPUT: "message['input']"}
    parts = re.split(r"(\{instruction\}|\{input\})", template)
    return " + ".join(fields.get(part) or jinja_literal(part) for part in parts if part)


def bos_start(tokenizer) -> str | None:
    """What the template writes before the first message, as a Jinja expression: None where the
    tokenizer puts no BOS first; else the BOS, followed by whatever makes the rendered text
    tokenize as the tokenizer encodes the text alone (module docstring)."""
    own = tokenizer(PROBE_TEXT, add_special_tokens=True)["input_ids"]
    if tokenizer.bos_token_id is None or not own or own[0] != tokenizer.bos_token_id:
        return None
    spaced = tokenizer(tokenizer.bos_token + " " + PROBE_TEXT, add_special_tokens=False)["input_ids"]
    if spaced == own and tokenizer(tokenizer.bos_token + PROBE_TEXT, add_special_tokens=False)["input_ids"] != own:
        return "bos_token + ' '"
    return "bos_token"


def tutorial_chat_template(style: PromptStyle, start: str | None) -> str:
    """The project's chat template for a prompt style (module docstring); start: bos_start's."""
    return (
        (f"{{{{- {start} -}}}}\n" if start else "")
        + "{%- for message in messages -%}\n"
        + "{%- if message['role'] == 'system' and loop.first -%}{{- message['content'] + '\\n' -}}\n"
        + "{%- elif message['role'] == 'user' and message['input'] -%}"
        + f"{{{{- {jinja_expression(style.input_template)} -}}}}\n"
        + f"{{%- elif message['role'] == 'user' -%}}{{{{- {jinja_expression(style.template)} -}}}}\n"
        + "{%- elif message['role'] == 'assistant' -%}{{- message['content'] + eos_token -}}\n"
        + "{%- else -%}{{- raise_exception('unexpected role ' + message['role']) -}}\n"
        + "{%- endif -%}\n"
        + "{%- endfor -%}\n"
    )


def conversation_messages(asked: Example) -> list[dict]:
    """The conversation up to an answer, as chat messages: the system message, the earlier turns
    and the instruction. asked: an Example, or anything else with its fields (a request)."""
    messages = [{"role": SYSTEM, "content": asked.system}] if asked.system else []
    for turn in asked.history:
        messages.append(user_message(turn.instruction, turn.input))
        messages.append({"role": ASSISTANT, "content": turn.answer})
    messages.append(user_message(asked.instruction, asked.input))
    return messages


def user_message(content: str, input_text: str = "") -> dict:
    return {"role": USER, "content": content, **({"input": input_text} if input_text else {})}


@dataclass(frozen=True)
class ChatFormat:
    """A chat template and what it puts after every answer."""

    template: str
    end_of_turn: list[int]  # ids after an answer's text: the EOS token, or the template's own marker

    def prompt_text(self, tokenizer, messages: list[dict]) -> str:
        return tokenizer.apply_chat_template(
            messages, chat_template=self.template, add_generation_prompt=True, tokenize=False
        )

    def prompt_ids(self, tokenizer, messages: list[dict]) -> list[int]:
        """The ids apply_chat_template gives: the rendered text, tokenized without added special tokens."""
        return tokenizer(self.prompt_text(tokenizer, messages), add_special_tokens=False)["input_ids"]

    def answer_ids(self, tokenizer, answer: str) -> list[int]:
        return tokenizer(answer, add_special_tokens=False)["input_ids"] + self.end_of_turn

    def end_name(self, tokenizer) -> str:
        return "EOS" if self.end_of_turn == [tokenizer.eos_token_id] else "its end-of-turn marker"

    def stop_ids(self, tokenizer) -> list[int]:
        """Where an answer ends: EOS, and the template's end-of-turn token where it has its own."""
        return list(dict.fromkeys([tokenizer.eos_token_id, self.end_of_turn[-1]]))


def end_of_turn_ids(tokenizer, template: str) -> list[int]:
    """The ids a template puts after an answer, up to its first special token (ChatML's
    <|im_end|>), read off a rendering; EOS where it puts no special token there."""
    question = [user_message("Frage")]
    try:
        prompt = tokenizer.apply_chat_template(
            question, chat_template=template, add_generation_prompt=True, tokenize=False
        )
        whole = tokenizer.apply_chat_template(
            [*question, {"role": ASSISTANT, "content": PROBE_TEXT}], chat_template=template, tokenize=False
        )
    except Exception as error:  # noqa: BLE001 - a template is code; any failure means it cannot be used
        raise UserError(
            f"the base model's chat template cannot render a conversation ({error}); "
            "train with --tutorial-template to use the tutorial's"
        ) from None
    if not whole.startswith(prompt + PROBE_TEXT):
        raise UserError(
            "the base model's chat template does not render a conversation as its prompt followed by the answer; "
            "train with --tutorial-template to use the tutorial's"
        )
    after = tokenizer(whole[len(prompt + PROBE_TEXT) :], add_special_tokens=False)["input_ids"]
    special = set(tokenizer.all_special_ids) | {
        index for index, token in tokenizer.added_tokens_decoder.items() if token.special
    }
    end = next((position for position, token in enumerate(after) if token in special), None)
    return after[: end + 1] if end is not None else [tokenizer.eos_token_id]


def chat_format(tokenizer, style: PromptStyle, use_saved: bool = True) -> ChatFormat:
    """The tokenizer's own chat template where it has one and use_saved, else the project's for style."""
    saved = getattr(tokenizer, "chat_template", None)
    if use_saved and isinstance(saved, str) and saved.strip():
        return ChatFormat(saved, end_of_turn_ids(tokenizer, saved))
    return ChatFormat(tutorial_chat_template(style, bos_start(tokenizer)), [tokenizer.eos_token_id])


def training_chat_template(tokenizer, style: PromptStyle, use_base: bool) -> str:
    """The template a training run prompts with and saves: the base model's own where it has one
    and use_base, checked to render a conversation as prompt and answer; else the project's."""
    chosen = chat_format(tokenizer, style, use_saved=use_base).template
    if chosen == getattr(tokenizer, "chat_template", None):
        log("Notice: prompts use the base model's chat template (--tutorial-template for the tutorial's).")
    return chosen
