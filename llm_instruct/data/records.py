"""Read instruction data kept as JSON Lines, JSON (Stanford Alpaca's alpaca_data.json) or CSV/TSV.

The `#` format holds an example per line, so an answer cannot span lines and published
datasets or spreadsheets do not fit it. These formats do. Every reader turns its rows into
the same field dict and validates it in `record_from_fields`, so a field means the same and
fails with the same words in every format; only the location differs: line N (JSONL),
record N (JSON), row N as a spreadsheet numbers it, header = row 1 (CSV/TSV).
"""

import csv
import io
import json
from dataclasses import dataclass
from pathlib import Path

from .instructions import Example, InstructionFileError, decoded_lines

TRAIN_SPLIT = "train"
EVAL_SPLIT = "eval"
# Alpaca's field names, each with the name prompt/completion datasets use for it.
REQUIRED_FIELDS = {"instruction": "prompt", "output": "completion"}
OPTIONAL_FIELDS = ("input", "split")
KNOWN_FIELDS = (*REQUIRED_FIELDS, *REQUIRED_FIELDS.values(), *OPTIONAL_FIELDS)
JSON_TYPE_NAMES = {
    dict: "object",
    list: "list",
    str: "string",
    int: "number",
    float: "number",
    bool: "boolean",
    type(None): "null",
}


@dataclass(frozen=True)
class Record:
    example: Example
    split: str  # TRAIN_SPLIT or EVAL_SPLIT


def _text(path: Path, fields: dict, key: str, location: int | str) -> str:
    value = fields[key]
    if not isinstance(value, str):
        raise InstructionFileError(path, f"'{key}' must be a string, found {JSON_TYPE_NAMES[type(value)]}", location)
    return value.replace("\r\n", "\n").strip()


def _required_text(path: Path, fields: dict, name: str, location: int | str) -> str:
    alias = REQUIRED_FIELDS[name]
    present = [key for key in (name, alias) if key in fields]
    if not present:
        raise InstructionFileError(path, f"missing '{name}' (or '{alias}')", location)
    if len(present) > 1:
        raise InstructionFileError(path, f"both '{name}' and '{alias}'; use one", location)
    text = _text(path, fields, present[0], location)
    if not text:
        raise InstructionFileError(path, f"empty '{present[0]}'", location)
    return text


def record_from_fields(path: Path, fields: dict, location: int | str) -> Record:
    """The one place a record is validated, whichever format its fields came from."""
    instruction = _required_text(path, fields, "instruction", location)
    output = _required_text(path, fields, "output", location)
    input_text = _text(path, fields, "input", location) if "input" in fields else ""
    split = (_text(path, fields, "split", location) if "split" in fields else "") or TRAIN_SPLIT
    if split not in (TRAIN_SPLIT, EVAL_SPLIT):
        raise InstructionFileError(
            path, f"'split' must be '{TRAIN_SPLIT}' or '{EVAL_SPLIT}', found {split!r}", location
        )
    return Record(Example(instruction, output, location, input_text), split)


def _decoded_text(path: Path) -> str:
    # Decoding line by line is what lets a UTF-8 error name its line, as in the `#` format.
    return "\n".join(decoded_lines(path))


def _parse_json(path: Path, text: str, first_line: int = 1):
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise InstructionFileError(
            path, f"invalid JSON: {error.msg} (column {error.colno})", first_line + error.lineno - 1
        ) from None


def _record_from_json(path: Path, value, location: int | str) -> Record:
    if not isinstance(value, dict):
        raise InstructionFileError(path, f"expected a JSON object, found {JSON_TYPE_NAMES[type(value)]}", location)
    return record_from_fields(path, value, location)


def read_jsonl(path) -> list[Record]:
    path = Path(path)
    return [
        _record_from_json(path, _parse_json(path, line, number), number)
        for number, line in enumerate(decoded_lines(path), start=1)
        if line.strip()
    ]


def read_json(path) -> list[Record]:
    path = Path(path)
    data = _parse_json(path, _decoded_text(path))
    if not isinstance(data, list):
        raise InstructionFileError(
            path, f"expected a list of records as in alpaca_data.json, found {JSON_TYPE_NAMES[type(data)]}"
        )
    if not data:
        raise InstructionFileError(path, "the list holds no records")
    return [_record_from_json(path, value, f"record {number}") for number, value in enumerate(data, start=1)]


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
