"""Read training and evaluation examples from an instruction file of any supported format.

The file's suffix picks the reader, so the `#` format keeps working unchanged and Alpaca-style
data can be used as downloaded. A file is divided into a training and an evaluation part by
its `_EVAL_` marker (`#` format) or its records' split field (structured formats); a file
without either is one part that serves as both. For training, evaluation examples come from
exactly one place, the file's own evaluation part or a separate eval file: naming them twice
is an error rather than a silent choice. An eval file is read whole, whatever its parts.
"""

from pathlib import Path

from .instructions import (
    EVAL_PART,
    TRAIN_PART,
    Example,
    InstructionFileError,
    InstructionSet,
    MarkedExamples,
    read_marked_examples,
)
from .records import SplitRecords, read_csv, read_json, read_jsonl, read_tsv

INSTRUCTION_LINE_SUFFIXES = ("", ".txt")  # the tutorial's instruction#answer format
RECORD_READERS = {".jsonl": read_jsonl, ".json": read_json, ".csv": read_csv, ".tsv": read_tsv}
ALL = "all"  # every example of a file, whatever its part


def read_divided(path) -> MarkedExamples | SplitRecords:
    """A file of any format with its division into parts; the suffix picks the reader."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix in INSTRUCTION_LINE_SUFFIXES:
        return read_marked_examples(path)
    if suffix not in RECORD_READERS:
        raise InstructionFileError(
            path, f"unknown file type '{suffix}'; use .txt (instruction#answer), .jsonl, .json, .csv or .tsv"
        )
    return SplitRecords(path, RECORD_READERS[suffix](path))


def read_examples(path, part: str = ALL) -> list[Example]:
    """The examples of one part of a file (TRAIN_PART or EVAL_PART), or ALL of them."""
    divided = read_divided(path)
    return divided.examples if part == ALL else divided.part(part)


def read_instructions(path, eval_file=None) -> InstructionSet:
    """Training examples, and evaluation examples from the file's own evaluation part or eval_file."""
    divided = read_divided(path)
    train = divided.part(TRAIN_PART)
    if eval_file is None:
        if not divided.divided:
            return InstructionSet(train=train, eval=train, eval_is_train=True)
        return InstructionSet(train=train, eval=divided.part(EVAL_PART), eval_is_train=False)
    if divided.divided:
        raise InstructionFileError(
            divided.path,
            f"both {divided.division} and --eval-file name evaluation examples; use one",
            divided.division_location,
        )
    return InstructionSet(train=train, eval=read_examples(eval_file), eval_is_train=False)
