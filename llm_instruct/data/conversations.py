"""Read conversation records: `messages` (OpenAI/ChatML roles) and ShareGPT's `conversations`.

    {"messages": [{"role": "system", "content": "..."}, {"role": "user", "content": "..."},
                  {"role": "assistant", "content": "..."}, ...]}
    {"conversations": [{"from": "human", "value": "..."}, {"from": "gpt", "value": "..."}, ...]}

After an optional system message, user and assistant turns alternate, starting with a user
turn and ending with an assistant turn. Each assistant turn becomes one example, with the
true turns before it as its history: trained on its answer alone, and scored given those
turns. A user message may carry an "input" field, Alpaca's context for the instruction.
Errors name the record and the turn (counted from 1, the system message included).
"""

from dataclasses import dataclass
from pathlib import Path

from .chat_template import ASSISTANT, SYSTEM, USER
from .fields import string_field, type_name
from .instructions import Example, InstructionFileError, Turn


@dataclass(frozen=True)
class ConversationFormat:
    field: str  # the record's list of turns
    role_key: str
    text_key: str
    roles: dict[str, str]  # role names as written -> SYSTEM, USER or ASSISTANT


MESSAGES = ConversationFormat("messages", "role", "content", {SYSTEM: SYSTEM, USER: USER, ASSISTANT: ASSISTANT})
SHAREGPT = ConversationFormat(
    "conversations",
    "from",
    "value",
    {SYSTEM: SYSTEM, "human": USER, "gpt": ASSISTANT, USER: USER, ASSISTANT: ASSISTANT},
)
FORMATS = (MESSAGES, SHAREGPT)
CONVERSATION_FIELDS = tuple(form.field for form in FORMATS)


@dataclass(frozen=True)
class Message:
    role: str  # SYSTEM, USER or ASSISTANT
    text: str
    input: str = ""


def _turn_field(path: Path, turn: dict, key: str, where: str, location) -> str:
    if key not in turn:
        raise InstructionFileError(path, f"{where}: missing {key!r}", location)
    try:
        return string_field(path, turn, key, location)
    except InstructionFileError as error:  # the same words as for a record's field, placed at the turn
        raise InstructionFileError(path, f"{where}: {error.detail}", location) from None


def _order_problem(role: str, previous: Message | None) -> str | None:
    """What is wrong with a turn of this role after the previous one, or None."""
    if role == SYSTEM:
        return "a system message may only come first" if previous else None
    if previous is None or previous.role == SYSTEM:
        return "an assistant turn before any user turn" if role == ASSISTANT else None
    return f"two {role} turns in a row" if previous.role == role else None


def read_messages(path: Path, form: ConversationFormat, turns, location, partial: bool = False) -> list[Message]:
    """The turns of one record, checked one by one; partial: a conversation awaiting its answer,
    so it ends with a user turn instead."""
    if not isinstance(turns, list):
        raise InstructionFileError(path, f"{form.field!r} must be a list of turns, found {type_name(turns)}", location)
    if not turns:
        raise InstructionFileError(path, f"{form.field!r} holds no turns", location)
    messages: list[Message] = []
    for number, turn in enumerate(turns, start=1):
        where = f"turn {number}"
        if not isinstance(turn, dict):
            raise InstructionFileError(path, f"{where}: expected a JSON object, found {type_name(turn)}", location)
        role = form.roles.get(role_name := _turn_field(path, turn, form.role_key, where, location))
        if role is None:
            known = ", ".join(form.roles)
            raise InstructionFileError(path, f"{where}: unknown role {role_name!r}; known: {known}", location)
        problem = _order_problem(role, messages[-1] if messages else None)
        if problem:
            raise InstructionFileError(path, f"{where}: {problem}", location)
        text = _turn_field(path, turn, form.text_key, where, location)
        if not text:
            raise InstructionFileError(path, f"{where}: empty {form.text_key!r}", location)
        input_text = _turn_field(path, turn, "input", where, location) if role == USER and "input" in turn else ""
        messages.append(Message(role, text, input_text))
    last = USER if partial else ASSISTANT
    if messages[-1].role != last:
        raise InstructionFileError(
            path, f"the conversation does not end with {'a' if partial else 'an'} {last} turn", location
        )
    return messages


def awaiting_answer(messages: list[Message], location) -> Example:
    """A conversation that ends with a user turn, as an example whose answer is still to come."""
    return examples_from_messages([*messages, Message(ASSISTANT, "")], location)[-1]


def examples_from_messages(messages: list[Message], location) -> list[Example]:
    """One example per assistant turn, with the turns before it as its history."""
    system = messages[0].text if messages[0].role == SYSTEM else ""
    exchanges = [message for message in messages if message.role != SYSTEM]
    examples, history = [], []
    for asked, answered in zip(exchanges[::2], exchanges[1::2], strict=True):
        examples.append(Example(asked.text, answered.text, location, asked.input, tuple(history), system))
        history.append(Turn(asked.text, answered.text, asked.input))
    return examples


def conversation_format(path: Path, names, location) -> ConversationFormat | None:
    """The conversation format a record's field names name, or None for an instruction record."""
    present = [form for form in FORMATS if form.field in names]
    if len(present) > 1:
        raise InstructionFileError(path, "both 'messages' and 'conversations'; use one", location)
    return present[0] if present else None
