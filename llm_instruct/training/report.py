"""training_report.json: what a run did, true over every session of a resumed run.

The Trainer logs the loss since its last log, so after a resume in the middle of an epoch the
epoch's log covers only the resumed part; and its train_runtime counts only the current
session. Each checkpoint therefore carries the loss up to its step (interrupt.py logs it) and
the seconds trained so far (TrainingClock), and the report weighs and adds them up.
"""

import json
import math
import os
import time
from pathlib import Path

from transformers import TrainerCallback

REPORT_FILE = "training_report.json"
SECONDS_KEY = "training_seconds"


class TrainingClock(TrainerCallback):
    """Seconds spent in training over all sessions of a run.

    Every checkpoint records the total so far in the Trainer's log history, which the
    checkpoint keeps and a resumed run reads back. Listed after the callbacks that decide on
    checkpoints, so that it sees their decision at the same event.
    """

    def __init__(self, clock=time.monotonic):
        self.clock = clock
        self.earlier = 0.0  # seconds of the sessions before this one
        self.started = clock()
        self.ended: float | None = None

    @property
    def seconds(self) -> float:
        return self.earlier + ((self.ended if self.ended is not None else self.clock()) - self.started)

    def on_train_begin(self, args, state, control, **kwargs):
        recorded = [entry[SECONDS_KEY] for entry in state.log_history if SECONDS_KEY in entry]
        self.earlier, self.started, self.ended = (recorded[-1] if recorded else 0.0), self.clock(), None

    def _record_before_a_checkpoint(self, args, state, control, **kwargs):
        if control.should_save:
            state.log_history.append({SECONDS_KEY: self.seconds, "step": state.global_step})

    on_step_end = on_epoch_end = _record_before_a_checkpoint

    def on_train_end(self, args, state, control, **kwargs):
        self.ended = self.clock()


def epoch_losses(log_history: list[dict], steps_per_epoch: int) -> list[dict]:
    """Loss and evaluation loss of each epoch; an epoch logged in parts (a run stopped and resumed
    in its middle) gets the mean over all its steps, each part weighed by the steps it covers."""
    by_epoch: dict[int, dict] = {}
    last_logged_step = 0
    for entry in sorted((e for e in log_history if "step" in e), key=lambda e: e["step"]):
        epoch = math.ceil(entry["step"] / steps_per_epoch)
        losses = by_epoch.setdefault(epoch, {"loss_sum": 0.0, "steps": 0})
        if "loss" in entry:
            steps = entry["step"] - last_logged_step
            losses["loss_sum"] += entry["loss"] * steps
            losses["steps"] += steps
            last_logged_step = entry["step"]
        if "eval_loss" in entry:
            losses["eval_loss"] = entry["eval_loss"]
    rows = []
    for epoch, losses in sorted(by_epoch.items()):
        row = {"epoch": epoch}
        if losses["steps"]:
            row["loss"] = losses["loss_sum"] / losses["steps"]
        if "eval_loss" in losses:
            row["eval_loss"] = losses["eval_loss"]
        if len(row) > 1:
            rows.append(row)
    return rows


def write_report(model_dir: Path, report: dict) -> None:
    """Write the report whole or not at all: it is rewritten once the evaluation is done."""
    path = Path(model_dir) / REPORT_FILE
    partial = path.with_name(f".{REPORT_FILE}.partial")
    partial.write_text(json.dumps(report, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    os.replace(partial, path)
