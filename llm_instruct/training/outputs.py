"""Where a run writes, checked before anything loads: it never replaces what it did not make,
nor anything it reads from.

A run writes --output-dir/NAME (replacing an earlier model of that name once the new one is
whole) and --output-dir/checkpoints-NAME (deleted once the model is written). So NAME must be a
plain folder name: "." would make the model directory --output-dir itself, and publishing
would delete every other model in it. Neither place may be, hold, or lie inside the base
model's directory or hold an input file; and an existing NAME must be a model directory
written by this project (it holds prompt_template.json) or empty.
"""

import os
from pathlib import Path

from ..cli import UserError
from ..data.prompt import STYLE_FILE
from ..models.lora import ADAPTER_CONFIG, adapter_base


def model_directory(args) -> Path:
    return Path(args.output_dir) / args.output_model


def checkpoint_directory(args) -> Path:
    """Per model name, so that two models in one --output-dir keep their checkpoints apart."""
    return Path(args.output_dir) / f"checkpoints-{args.output_model}"


def check_outputs(args) -> None:
    check_output_name(args.output_model)
    check_output_places(
        model_directory(args), checkpoint_directory(args), args.model_name, [args.input_file, args.eval_file]
    )


def check_output_name(name: str) -> None:
    separators = {os.sep, os.altsep} - {None}
    if name in ("", ".", "..") or any(separator in name for separator in separators):
        raise UserError(
            f"--output-model {name!r}: give a plain folder name (not empty, '.' or '..', and without '/'); "
            f"it is created inside --output-dir"
        )


def read_places(model_name: str, input_files: list) -> list[tuple[str, Path]]:
    """What the run reads from on this machine, each with how to name it."""
    places = [(f"the input file {path}", Path(path)) for path in input_files if path]
    base = Path(model_name)
    if base.is_dir():
        places.append((f"the base model's directory {base}", base))
        if (base / ADAPTER_CONFIG).is_file() and Path(adapter_base(base)).is_dir():
            places.append((f"the adapter's base model directory {adapter_base(base)}", Path(adapter_base(base))))
    return places


def overlap(written: Path, read: Path) -> str | None:
    """How writing (or deleting) written would touch read: it would be it, hold it, or lie inside it."""
    written, read = written.resolve(), read.resolve()
    if written == read:
        return "would be"
    if written in read.parents:
        return "would hold"
    if read in written.parents:
        return "would lie inside"
    return None


def check_output_places(model_dir: Path, checkpoint_dir: Path, model_name: str, input_files: list) -> None:
    for what, read in read_places(model_name, input_files):
        for written, name in ((model_dir, "the model directory"), (checkpoint_dir, "the checkpoint folder")):
            relation = overlap(written, read)
            if relation:
                raise UserError(
                    f"{name} {written} {relation} {what}, which the run reads from; "
                    f"choose another --output-dir or --output-model"
                )
    if model_dir.is_file() or (
        model_dir.is_dir() and any(model_dir.iterdir()) and not (model_dir / STYLE_FILE).is_file()
    ):
        raise UserError(
            f"{model_dir} exists and is not a model directory written by instruct_ger.py, so it is not replaced; "
            f"choose another --output-model or move it away"
        )
