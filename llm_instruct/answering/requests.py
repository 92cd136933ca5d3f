"""What generate.py is asked: instructions from its arguments, or read line by line from stdin.

Standard input is read as bytes and split the way the instruction files are (LF, CRLF or a
lone CR), so a pasted classic-Mac text is several lines, not one. Each line is decoded and,
with --jsonl-input, parsed on its own: a bad line is reported with its number and skipped,
and the lines after it are still answered.
"""

from collections.abc import Callable, Iterator
from dataclasses import dataclass

from ..cli import UserError
from ..data.fields import type_name
from ..data.instructions import LINE_END, Turn, decode_line
from ..data.records import parse_json, request_from_fields

STDIN = "stdin"


@dataclass(frozen=True)
class Request:
    """What the model is asked: an instruction, and the conversation it continues."""

    instruction: str
    input: str = ""
    where: str = ""  # for messages: "stdin:3", "argument 2"
    history: tuple[Turn, ...] = ()
    system: str = ""


def numbered_lines(stream) -> Iterator[tuple[int, bytes]]:
    """Lines of a binary stream with their numbers, split at LF, CRLF and lone CR."""
    number = 0
    for chunk in stream:  # a binary stream yields pieces ending in LF; CRs may sit inside them
        parts = LINE_END.split(chunk)
        if not parts[-1]:  # the piece ended with a line end
            parts.pop()
        for part in parts:
            number += 1
            yield number, part


def parse_line(raw: bytes, number: int, jsonl: bool) -> Request | None:
    """The request on one line of stdin; None for a blank line."""
    line = decode_line(raw, STDIN, number)
    if not line.strip():
        return None
    where = f"{STDIN}:{number}"
    if not jsonl:
        return Request(line.strip(), "", where)
    value = parse_json(STDIN, line, number)
    if not isinstance(value, dict):
        raise UserError(
            f"{where}: expected a JSON object with 'instruction' and optional 'input', found {type_name(value)}"
        )
    asked = request_from_fields(STDIN, value, number)
    return Request(asked.instruction, asked.input, where, asked.history, asked.system)


def stdin_requests(stream, jsonl: bool, reject: Callable[[UserError], None]) -> Iterator[Request]:
    """The requests on a binary stream; reject(error) hears of every line that cannot be one."""
    for number, raw in numbered_lines(stream):
        try:
            request = parse_line(raw, number, jsonl)
        except UserError as error:
            reject(error)
            continue
        if request is not None:
            yield request


def argument_requests(instructions: list[str]) -> list[Request]:
    numbered = enumerate(instructions, start=1)
    return [Request(text.strip(), "", f"argument {number}") for number, text in numbered if text.strip()]
