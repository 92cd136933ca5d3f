"""Read instruction data kept as JSON Lines, JSON (Stanford Alpaca's alpaca_data.json) or CSV/TSV.

The `#` format holds an example per line, so an answer cannot span lines and published
datasets or spreadsheets do not fit it. These formats do. Every reader turns its rows into
the same field dict and validates it in `record_from_fields`, so a field means the same and
fails with the same words in every format; only the location differs: line N (JSONL),
record N (JSON), row N as a spreadsheet numbers it, header = row 1 (CSV/TSV). Field names are
matched ignoring case in every format, and fields the project does not know are named once
per file in a notice: datasets often carry extras such as an id or a category.
"""

import csv
import io
import json
from dataclasses import dataclass
from pathlib import Path

from ..cli import log
from .conversations import (
    CONVERSATION_FIELDS,
    awaiting_answer,
    conversation_format,
    examples_from_messages,
    read_messages,
)
from .fields import string_field, type_name
from .instructions import EVAL_PART, TRAIN_PART, Example, InstructionFileError, decoded_lines

# Alpaca's field names, each with the name prompt/completion datasets use for it.
REQUIRED_FIELDS = {"instruction": "prompt", "output": "completion"}
OPTIONAL_FIELDS = ("input", "split")
KNOWN_FIELDS = (*REQUIRED_FIELDS, *REQUIRED_FIELDS.values(), *OPTIONAL_FIELDS)
JSON_FIELDS = (*KNOWN_FIELDS, *CONVERSATION_FIELDS)  # a spreadsheet's cells hold no conversations


@dataclass(frozen=True)
class Record:
    example: Example
    split: str  # TRAIN_PART or EVAL_PART


@dataclass(frozen=True)
class SplitRecords:
    """A structured file's records, divided by their split field into a training and an
    evaluation part; a file without 'eval' records is one part that serves as both."""

    path: Path
    records: list[Record]

    division = f"split '{EVAL_PART}' records"

    @property
    def examples(self) -> list[Example]:
        return [record.example for record in self.records]

    @property
    def divided(self) -> bool:
        return any(record.split == EVAL_PART for record in self.records)

    @property
    def division_location(self) -> int | str | None:
        return next((record.example.location for record in self.records if record.split == EVAL_PART), None)

    def part(self, name: str) -> list[Example]:
        if not self.divided:
            return self.examples
        chosen = [record.example for record in self.records if record.split == name]
        if not chosen:  # only the training part can be empty in a divided file
            raise InstructionFileError(self.path, f"every record has split '{EVAL_PART}'; none is left for training")
        return chosen


def _by_lower_name(path: Path, fields: dict, location: int | str) -> dict[str, str]:
    """Field names as written, by their lower-case form, which every format matches."""
    names: dict[str, str] = {}
    for name in fields:
        key = name.strip().lower()
        if key in names:
            raise InstructionFileError(path, f"{names[key]!r} and {name!r} name the same field; use one", location)
        names[key] = name
    return names


def _required_text(path: Path, fields: dict, names: dict[str, str], name: str, location: int | str) -> str:
    alias = REQUIRED_FIELDS[name]
    present = [names[key] for key in (name, alias) if key in names]
    if not present:
        raise InstructionFileError(path, f"missing '{name}' (or '{alias}')", location)
    if len(present) > 1:
        raise InstructionFileError(path, f"both {present[0]!r} and {present[1]!r}; use one", location)
    text = string_field(path, fields, present[0], location)
    if not text:
        raise InstructionFileError(path, f"empty {present[0]!r}", location)
    return text


def _split(path: Path, fields: dict, names: dict[str, str], location: int | str) -> str:
    split = (string_field(path, fields, names["split"], location) if "split" in names else "") or TRAIN_PART
    if split not in (TRAIN_PART, EVAL_PART):
        raise InstructionFileError(
            path, f"{names['split']!r} must be '{TRAIN_PART}' or '{EVAL_PART}', found {split!r}", location
        )
    return split


def record_from_fields(path: Path, fields: dict, location: int | str) -> Record:
    """The one place an instruction record is validated, whichever format its fields came from."""
    names = _by_lower_name(path, fields, location)
    instruction = _required_text(path, fields, names, "instruction", location)
    output = _required_text(path, fields, names, "output", location)
    input_text = string_field(path, fields, names["input"], location) if "input" in names else ""
    return Record(Example(instruction, output, location, input_text), _split(path, fields, names, location))


def _conversation_format(path: Path, names: dict[str, str], location: int | str):
    """A conversation record's format, or None for an instruction record; never both in one record."""
    form = conversation_format(path, names, location)
    if form is not None and any(name in names for name in (*REQUIRED_FIELDS, *REQUIRED_FIELDS.values())):
        raise InstructionFileError(
            path, f"a record holds either {form.field!r} or instruction fields, not both", location
        )
    return form


def records_from_fields(path: Path, fields: dict, location: int | str) -> list[Record]:
    """A JSON record's examples: one for an instruction, one per assistant turn for a conversation."""
    names = _by_lower_name(path, fields, location)
    form = _conversation_format(path, names, location)
    if form is None:
        return [record_from_fields(path, fields, location)]
    messages = read_messages(path, form, fields[names[form.field]], location)
    split = _split(path, fields, names, location)
    return [Record(example, split) for example in examples_from_messages(messages, location)]


def request_from_fields(path, fields: dict, location: int | str) -> Example:
    """A record that asks rather than teaches: an instruction (no output), or a conversation that
    ends with the user turn to answer. The answer of the example returned is empty."""
    names = _by_lower_name(path, fields, location)
    form = _conversation_format(path, names, location)
    if form is not None:
        return awaiting_answer(read_messages(path, form, fields[names[form.field]], location, partial=True), location)
    instruction = _required_text(path, fields, names, "instruction", location)
    input_text = string_field(path, fields, names["input"], location) if "input" in names else ""
    return Example(instruction, "", location, input_text)


def unknown_fields(names, known=KNOWN_FIELDS) -> list[str]:
    return [name for name in names if name.strip().lower() not in known]


def notice_unknown_fields(path: Path, names: list[str]) -> None:
    """Name the fields that are ignored, once per file, in the order they first appear."""
    if names:
        ignored = ", ".join(repr(name) for name in dict.fromkeys(names))
        log(f"Notice: {path}: ignoring unknown field(s) {ignored}; known: {', '.join(KNOWN_FIELDS)}")


def _decoded_text(path: Path) -> str:
    # Decoding line by line is what lets a UTF-8 error name its line, as in the `#` format.
    return "\n".join(decoded_lines(path))


def parse_json(path: Path, text: str, first_line: int | None = 1):
    """first_line None: the text is the whole file, whose lines the decoder's error names."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise InstructionFileError(
            path, f"invalid JSON: {error.msg} (column {error.colno})", (first_line or 1) + error.lineno - 1
        ) from None
    except ValueError:  # Python refuses integers of more than 4300 digits
        raise InstructionFileError(path, "invalid JSON: a number of more than 4300 digits", first_line) from None
    except RecursionError:
        raise InstructionFileError(path, "invalid JSON: nested too deeply to read", first_line) from None


def _records_from_json(path: Path, values) -> list[Record]:
    """(location, value) pairs as records; unknown fields are named once for the whole file."""
    records, unknown = [], []
    for location, value in values:
        if not isinstance(value, dict):
            raise InstructionFileError(path, f"expected a JSON object, found {type_name(value)}", location)
        records += records_from_fields(path, value, location)
        unknown += unknown_fields(value, JSON_FIELDS)
    notice_unknown_fields(path, unknown)
    return records


def read_jsonl(path) -> list[Record]:
    path = Path(path)
    lines = enumerate(decoded_lines(path), start=1)
    records = _records_from_json(
        path, ((number, parse_json(path, line, number)) for number, line in lines if line.strip())
    )
    if not records:
        raise InstructionFileError(path, "no records, only blank lines")
    return records


def read_json(path) -> list[Record]:
    path = Path(path)
    data = parse_json(path, _decoded_text(path), None)
    if not isinstance(data, list):
        raise InstructionFileError(path, f"expected a list of records as in alpaca_data.json, found {type_name(data)}")
    if not data:
        raise InstructionFileError(path, "the list holds no records")
    return _records_from_json(path, ((f"record {number}", value) for number, value in enumerate(data, start=1)))


def _csv_rows(path: Path, delimiter: str):
    """(row number, cells) per CSV record; a quoted cell may span lines, so rows are not lines."""
    # strict: an unclosed or stray quote is an error here rather than cells silently merged.
    rows = csv.reader(io.StringIO(_decoded_text(path), newline=""), delimiter=delimiter, strict=True)
    number = 0
    try:
        for number, cells in enumerate(rows, start=1):
            yield number, cells
    except csv.Error as error:
        raise InstructionFileError(path, f"invalid CSV: {error}", f"row {number + 1}") from None


def _column_indexes(path: Path, header: list[str]) -> dict[str, int]:
    """The known fields the header names, and their columns."""
    indexes: dict[str, int] = {}
    for index, cell in enumerate(header):
        name = cell.strip().lower()
        if name in KNOWN_FIELDS:
            if name in indexes:
                raise InstructionFileError(path, f"the header names '{name}' twice", "row 1")
            indexes[name] = index
    notice_unknown_fields(path, unknown_fields(cell for cell in header if cell.strip()))
    for name, alias in REQUIRED_FIELDS.items():
        if name in indexes and alias in indexes:
            raise InstructionFileError(path, f"the header names both '{name}' and '{alias}'; use one", "row 1")
        if name not in indexes and alias not in indexes:
            found = ", ".join(" ".join(cell.split()) for cell in header) or "an empty row"
            raise InstructionFileError(
                path, f"the header names no '{name}' (or '{alias}') column; found: {found}", "row 1"
            )
    return indexes


def read_csv(path, delimiter: str = ",") -> list[Record]:
    path = Path(path)
    rows = _csv_rows(path, delimiter)
    _, header = next(rows)  # there is one: decoded_lines rejects an empty file
    indexes = _column_indexes(path, header)
    records = []
    for number, cells in rows:
        if not any(cell.strip() for cell in cells):
            continue  # a blank line, or a spreadsheet's empty row
        if len(cells) > len(header):
            raise InstructionFileError(
                path, f"{len(cells)} cells, but the header names {len(header)} columns", f"row {number}"
            )
        # A row cut short leaves its last cells empty, as a spreadsheet shows it.
        fields = {name: cells[index] if index < len(cells) else "" for name, index in indexes.items()}
        records.append(record_from_fields(path, fields, f"row {number}"))
    if not records:
        raise InstructionFileError(path, "no rows after the header")
    return records


def read_tsv(path) -> list[Record]:
    return read_csv(path, delimiter="\t")
