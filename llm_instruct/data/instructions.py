"""Parse an instruction file into training and evaluation examples.

The format is the tutorial's: one `instruction#answer` per line, split at the
last '#'; empty lines and lines starting with '#' are skipped; a comment line
containing `_EVAL_` starts the evaluation lines. Unlike the tutorial, a line
that does not parse is an error naming the file and line, never dropped.
"""

from dataclasses import dataclass
from pathlib import Path

from ..cli import UserError

COMMENT_CHAR = "#"
EVAL_MARKER = "_EVAL_"


@dataclass(frozen=True)
class Example:
    instruction: str
    answer: str
    # Where the example stands in its file, for error messages: a line number, or a
    # description such as "record 3" (JSON) or "row 4" (CSV).
    location: int | str
    input: str = ""  # Alpaca's optional context for the instruction; empty for most examples


@dataclass(frozen=True)
class InstructionSet:
    train: list[Example]
    eval: list[Example]
    eval_is_train: bool  # no _EVAL_ marker: the training lines double as evaluation lines


class InstructionFileError(UserError):
    def __init__(self, path, message: str, location: int | str | None = None):
        if location is None:
            where = f"{path}"
        elif isinstance(location, int):
            where = f"{path}:{location}"
        else:
            where = f"{path}: {location}"
        super().__init__(f"{where}: {message}")
        self.location = location


def decoded_lines(path: Path) -> list[str]:
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise InstructionFileError(path, "no such file") from None
    except IsADirectoryError:
        raise InstructionFileError(path, "is a directory, expected an instruction file") from None
    if raw.startswith(b"\xef\xbb\xbf"):
        raw = raw[3:]
    if not raw.strip():
        raise InstructionFileError(path, "file is empty")
    lines = []
    for number, raw_line in enumerate(raw.split(b"\n"), start=1):
        try:
            lines.append(raw_line.decode("utf-8"))
        except UnicodeDecodeError as error:
            byte = raw_line[error.start]
            raise InstructionFileError(
                path,
                f"not UTF-8 (byte 0x{byte:02x} at column {error.start + 1}); save the file as UTF-8",
                number,
            ) from None
    return lines


def parse_instruction_file(path) -> InstructionSet:
    path = Path(path)
    examples: list[Example] = []
    eval_start = None  # index into examples where the evaluation lines begin
    marker_line = None
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

    if eval_start is None:
        if not examples:
            raise InstructionFileError(path, "no instruction lines, only comments")
        return InstructionSet(train=examples, eval=examples, eval_is_train=True)
    if eval_start == 0:
        raise InstructionFileError(path, f"no training lines before the {EVAL_MARKER} marker", marker_line)
    if eval_start == len(examples):
        raise InstructionFileError(path, f"the {EVAL_MARKER} marker is followed by no evaluation lines", marker_line)
    return InstructionSet(train=examples[:eval_start], eval=examples[eval_start:], eval_is_train=False)
