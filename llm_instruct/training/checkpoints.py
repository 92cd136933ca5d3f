"""Checkpoints: written only when they pay, resumed only when complete.

A checkpoint holds weights, optimizer state and random states: for the 1b5 model in fp32
with AdamW about 16 GB, a minute's writing on a laptop. Losing a few minutes of a run costs
less than that, so between epochs a checkpoint is written only once the interval has passed
since the last one (or since the start), and never after the final epoch, whose model
directory follows at once.

The Trainer writes trainer_state.json last, so a checkpoint folder without it (or with one
that cannot be read) was cut off while being written (a killed process, a full disk) and
cannot be resumed from. A checkpoint resumes only a run of the same kind: LoRA adapters of
the same shape, or all weights.
"""

import contextlib
import json
import re
import shutil
import time
from pathlib import Path

from transformers import TrainerCallback

from ..cli import UserError, log
from ..models.lora import ADAPTER_CONFIG

COMPLETE_MARKER = "trainer_state.json"
_CHECKPOINT_NAME = re.compile(r"checkpoint-(\d+)")


def should_save(*, final_epoch: bool, interval_minutes: float | None, seconds_since_last_save: float) -> bool:
    """Whether to write a checkpoint at the end of an epoch. interval_minutes None: never."""
    if final_epoch or interval_minutes is None:
        return False
    return seconds_since_last_save >= interval_minutes * 60


class CheckpointPolicy(TrainerCallback):
    """Decides at each epoch's end, and reports every checkpoint written with its duration."""

    def __init__(self, interval_minutes: float | None, clock=time.monotonic):
        self.interval_minutes, self.clock = interval_minutes, clock
        self.last_save = self.last_event = clock()
        self.seconds_writing = 0.0

    def _mark(self, *_, **__):
        # The last event before on_save is where the writing began.
        self.last_event = self.clock()

    on_step_end = on_log = on_evaluate = _mark

    def on_train_begin(self, args, state, control, **kwargs):
        self.last_save = self.last_event = self.clock()

    def on_epoch_end(self, args, state, control, **kwargs):
        final = state.global_step >= state.max_steps
        control.should_save = should_save(
            final_epoch=final,
            interval_minutes=self.interval_minutes,
            seconds_since_last_save=self.clock() - self.last_save,
        )
        self._mark()

    def on_save(self, args, state, control, **kwargs):
        now = self.clock()
        seconds = now - self.last_event
        if state.is_world_process_zero:
            folder = Path(args.output_dir) / f"checkpoint-{state.global_step}"
            log(f"Checkpoint: wrote {folder} (step {state.global_step}) in {seconds:.1f} s")
        self.seconds_writing += seconds
        self.last_save = now


def checkpoints_newest_first(directory: Path) -> list[Path]:
    if not directory.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in directory.iterdir() if (m := _CHECKPOINT_NAME.fullmatch(p.name))]
    return [path for _, path in sorted(found, reverse=True)]


def read_state(checkpoint: Path) -> dict | None:
    """The checkpoint's trainer state, or None where it is missing or cannot be read."""
    try:
        state = json.loads((checkpoint / COMPLETE_MARKER).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError, RecursionError):
        return None
    return state if isinstance(state, dict) and isinstance(state.get("global_step"), int) else None


def is_complete(checkpoint: Path) -> bool:
    return read_state(checkpoint) is not None


def newest_complete(directory: Path) -> tuple[Path | None, list[Path]]:
    """The newest complete checkpoint, and the incomplete ones newer than it."""
    incomplete = []
    for checkpoint in checkpoints_newest_first(directory):
        if is_complete(checkpoint):
            return checkpoint, incomplete
        incomplete.append(checkpoint)
    return None, incomplete


def remove_incomplete(incomplete: list[Path]) -> None:
    for checkpoint in incomplete:
        log(
            f"Notice: removing {checkpoint}: its {COMPLETE_MARKER} is missing or unreadable, so writing it was cut off."
        )
        shutil.rmtree(checkpoint, ignore_errors=True)


def remove_checkpoints(directory: Path) -> None:
    """The run's checkpoints, once its finished model supersedes them; anything else in the
    folder stays, and so does the folder then."""
    for checkpoint in checkpoints_newest_first(directory):
        shutil.rmtree(checkpoint, ignore_errors=True)
    with contextlib.suppress(OSError):  # not empty, or already gone
        directory.rmdir()


def adapter_shape(settings) -> dict | None:
    """What a LoRA checkpoint must match to be resumed with these settings (None: no LoRA)."""
    if settings is None:
        return None
    shape = {"r": settings.r, "lora_alpha": settings.alpha}
    if settings.target_modules:  # without them, peft's choice for the architecture, as when the run began
        shape["target_modules"] = sorted(settings.target_modules)
    return shape


def check_resumable(checkpoint: Path, lora_settings) -> None:
    """Refuse a checkpoint of another kind of run before it fails deep inside the Trainer."""
    config_file = checkpoint / ADAPTER_CONFIG
    wanted = adapter_shape(lora_settings)
    if not config_file.is_file():
        if wanted is not None:
            raise UserError(f"{checkpoint} holds all weights, from a run without --lora; resume without --lora")
        return
    if wanted is None:
        raise UserError(f"{checkpoint} holds LoRA adapters, from a run with --lora; resume with --lora")
    try:
        saved = json.loads(config_file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError, RecursionError):
        raise UserError(f"{config_file} cannot be read; delete {checkpoint.parent} to start over") from None
    if isinstance(saved.get("target_modules"), list):
        saved["target_modules"] = sorted(saved["target_modules"])
    differing = [f"{key} {saved.get(key)} (now {value})" for key, value in wanted.items() if saved.get(key) != value]
    if differing:
        raise UserError(
            f"{checkpoint} holds LoRA adapters with {', '.join(differing)}; resume with the LoRA flags of that run"
        )


def checkpoint_to_resume(
    checkpoint_dir: Path, resume: bool, epochs: int, is_main: bool, lora_settings=None
) -> Path | None:
    """The checkpoint --resume continues from; refuses to start over silently where one is left."""
    complete, incomplete = newest_complete(checkpoint_dir)
    if is_main:
        remove_incomplete(incomplete)
    if resume:
        if complete is None:
            raise UserError(f"--resume: no complete checkpoint in {checkpoint_dir}; run once without --resume")
        check_resumable(complete, lora_settings)
        state = read_state(complete)
        if is_main:
            print(f"Resuming from step {state['global_step']} ({complete}, epoch {state['epoch']:g} of {epochs})")
        return complete
    if complete is not None:
        raise UserError(
            f"{complete} is left from an unfinished run: pass --resume to continue it, "
            f"or delete {checkpoint_dir} to start over"
        )
    return None
