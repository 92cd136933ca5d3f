"""Read training and evaluation examples from an instruction file of any supported format.

The file's suffix picks the reader, so the `#` format keeps working unchanged and Alpaca-style
data can be used as downloaded. Evaluation examples come from exactly one place: the `_EVAL_`
marker (`#` format), records with split "eval" (structured formats), or a separate eval
file; naming them twice is an error rather than a silent choice.
"""

from collections.abc import Callable
from pathlib import Path

from .instructions import EVAL_MARKER, Example, InstructionFileError, InstructionSet, parse_instruction_file
from .records import EVAL_SPLIT, TRAIN_SPLIT, Record, read_csv, read_json, read_jsonl, read_tsv

INSTRUCTION_LINE_SUFFIXES = ("", ".txt")  # the tutorial's instruction#answer format
RECORD_READERS: dict[str, Callable[[Path], list[Record]]] = {
    ".jsonl": read_jsonl,
    ".json": read_json,
    ".csv": read_csv,
    ".tsv": read_tsv,
}


def _record_reader(path: Path) -> Callable[[Path], list[Record]] | None:
    """The reader for a structured file, None for the `#` format."""
    suffix = path.suffix.lower()
    if suffix in INSTRUCTION_LINE_SUFFIXES:
        return None
    if suffix not in RECORD_READERS:
        raise InstructionFileError(
            path, f"unknown file type '{suffix}'; use .txt (instruction#answer), .jsonl, .json, .csv or .tsv"
        )
    return RECORD_READERS[suffix]


def read_all_examples(path) -> list[Example]:
    """Every example of a file, ignoring its train/eval split: an eval file is evaluation data throughout."""
    path = Path(path)
    read_records = _record_reader(path)
    if read_records is None:
        parsed = parse_instruction_file(path)
        return parsed.train if parsed.eval_is_train else parsed.train + parsed.eval
    return [record.example for record in read_records(path)]


def read_instructions(path, eval_file=None) -> InstructionSet:
    path = Path(path)
    read_records = _record_reader(path)
    if read_records is None:
        parsed = parse_instruction_file(path)
        if eval_file is None:
            return parsed
        if not parsed.eval_is_train:
            raise InstructionFileError(
                path, f"both an {EVAL_MARKER} marker and --eval-file name evaluation examples; use one"
            )
        train = parsed.train
    else:
        records = read_records(path)
        train = [record.example for record in records if record.split == TRAIN_SPLIT]
        held_out = [record.example for record in records if record.split == EVAL_SPLIT]
        if not train:
            raise InstructionFileError(path, f"every record has split '{EVAL_SPLIT}'; none is left for training")
        if eval_file is None:
            if not held_out:
                return InstructionSet(train=train, eval=train, eval_is_train=True)
            return InstructionSet(train=train, eval=held_out, eval_is_train=False)
        if held_out:
            raise InstructionFileError(
                path,
                f"both split '{EVAL_SPLIT}' records and --eval-file name evaluation examples; use one",
                held_out[0].location,
            )
    return InstructionSet(train=train, eval=read_all_examples(eval_file), eval_is_train=False)
