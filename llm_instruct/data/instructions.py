"""Parse an instruction file into training and evaluation examples.

The format is the tutorial's: one `instruction#answer` per line, split at the
last '#'; empty lines and lines starting with '#' are skipped; a comment line
containing `_EVAL_` starts the evaluation lines. Unlike the tutorial, a line
that does not parse is an error naming the file and line, never dropped.
"""

import re
from dataclasses import dataclass
from pathlib import Path

from ..cli import UserError

COMMENT_CHAR = "#"
EVAL_MARKER = "_EVAL_"
# The two parts of a file, as its _EVAL_ marker or its records' split field divide it.
TRAIN_PART = "train"
EVAL_PART = "eval"


@dataclass(frozen=True)
class Turn:
    """An earlier exchange of a conversation: what the user asked and what the assistant answered."""

    instruction: str
    answer: str
    input: str = ""


@dataclass(frozen=True)
class Example:
    """One answer to learn or score: the instruction it answers and what came before it.

    A conversation gives one example per assistant turn, each with the true earlier turns as
    history; an instruction is a conversation of one turn.
    """

    instruction: str
    answer: str
    # Where the example stands in its file, for error messages: a line number, or a
    # description such as "record 3" (JSON) or "row 4" (CSV).
    location: int | str
    input: str = ""  # Alpaca's optional context for the instruction; empty for most examples
    history: tuple[Turn, ...] = ()  # the conversation's earlier turns, as they were written
    system: str = ""  # a conversation's system message


@dataclass(frozen=True)
class InstructionSet:
    train: list[Example]
    eval: list[Example]
    eval_is_train: bool  # no _EVAL_ marker: the training lines double as evaluation lines


def place(path, location: int | str | None = None) -> str:
    """A file and a place in it, as messages name it: FILE:LINE, FILE: record N, or FILE."""
    if location is None:
        return f"{path}"
    if isinstance(location, int):
        return f"{path}:{location}"
    return f"{path}: {location}"


class InstructionFileError(UserError):
    def __init__(self, path, message: str, location: int | str | None = None):
        super().__init__(f"{place(path, location)}: {message}")
        self.location, self.detail = location, message


# Universal newlines, as Python's text files read them: classic Mac files end their lines with CR alone.
LINE_END = re.compile(rb"\r\n|\r|\n")


def read_bytes(path: Path) -> bytes:
    """The file's bytes; a file that cannot be read is an error naming it, never a traceback."""
    try:
        return path.read_bytes()
    except (FileNotFoundError, NotADirectoryError):
        raise InstructionFileError(path, "no such file") from None
    except IsADirectoryError:
        raise InstructionFileError(path, "is a directory, expected an instruction file") from None
    except OSError as error:
        raise InstructionFileError(path, f"cannot be read ({error.strerror or error})") from None


def decode_line(raw_line: bytes, path, number: int) -> str:
    try:
        return raw_line.decode("utf-8")
    except UnicodeDecodeError as error:
        byte = raw_line[error.start]
        raise InstructionFileError(
            path, f"not UTF-8 (byte 0x{byte:02x} at column {error.start + 1}); save the file as UTF-8", number
        ) from None


def decoded_lines(path: Path) -> list[str]:
    raw = read_bytes(path)
    if raw.startswith(b"\xef\xbb\xbf"):
        raw = raw[3:]
    if not raw.strip():
        raise InstructionFileError(path, "file is empty")
    return [decode_line(raw_line, path, number) for number, raw_line in enumerate(LINE_END.split(raw), start=1)]


@dataclass(frozen=True)
class MarkedExamples:
    """Every example of a `#` file, divided by its _EVAL_ marker into a training and an
    evaluation part; a file without a marker is one part that serves as both."""

    path: Path
    examples: list[Example]
    eval_start: int | None  # index into examples of the first evaluation example; None: no marker
    marker_line: int | None

    division = f"an {EVAL_MARKER} marker"

    @property
    def divided(self) -> bool:
        return self.eval_start is not None

    @property
    def division_location(self) -> int | None:
        return self.marker_line

    def part(self, name: str) -> list[Example]:
        """TRAIN_PART (the lines before the marker) or EVAL_PART (after it); all lines without a marker."""
        if self.eval_start is None:
            return self.examples
        if name == TRAIN_PART:
            if self.eval_start == 0:
                raise InstructionFileError(
                    self.path, f"no training lines before the {EVAL_MARKER} marker", self.marker_line
                )
            return self.examples[: self.eval_start]
        if self.eval_start == len(self.examples):
            raise InstructionFileError(
                self.path, f"the {EVAL_MARKER} marker is followed by no evaluation lines", self.marker_line
            )
        return self.examples[self.eval_start :]


def read_marked_examples(path) -> MarkedExamples:
    path = Path(path)
    examples: list[Example] = []
    eval_start = marker_line = None
    for number, line in enumerate(decoded_lines(path), start=1):
        if not line.strip():
            continue
        # Only a '#' in the first column makes a comment: an indented "  #Antwort" is a
        # line with an empty instruction, reported rather than silently skipped.
        if line.startswith(COMMENT_CHAR):
            if EVAL_MARKER in line:
                if marker_line is not None:
                    raise InstructionFileError(
                        path, f"second {EVAL_MARKER} marker (the first is on line {marker_line})", number
                    )
                marker_line, eval_start = number, len(examples)
            continue
        instruction, separator, answer = line.rpartition(COMMENT_CHAR)
        instruction, answer = instruction.strip(), answer.strip()
        if not separator:
            raise InstructionFileError(path, "expected 'instruction#answer', found no '#'", number)
        if not instruction:
            raise InstructionFileError(path, "empty instruction before '#'", number)
        if not answer:
            raise InstructionFileError(path, "empty answer after the last '#'", number)
        examples.append(Example(instruction, answer, number))
    if not examples:
        raise InstructionFileError(path, "no instruction lines, only comments")
    return MarkedExamples(path, examples, eval_start, marker_line)


def parse_instruction_file(path) -> InstructionSet:
    marked = read_marked_examples(path)
    if not marked.divided:
        return InstructionSet(train=marked.examples, eval=marked.examples, eval_is_train=True)
    return InstructionSet(train=marked.part(TRAIN_PART), eval=marked.part(EVAL_PART), eval_is_train=False)
