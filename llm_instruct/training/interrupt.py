"""Ctrl-C during training: finish the current step, write a checkpoint there, exit 130.

A Ctrl-C that lands in the middle of a step would lose everything since the last
checkpoint, possibly the whole run. The first Ctrl-C only asks the Trainer to stop after
the step in progress and save; a second one quits at once, as Ctrl-C normally does.
Used in single-process runs: a launcher such as torchrun stops its workers by itself.
"""

import shlex
import signal
import sys

from transformers import TrainerCallback

from ..cli import log


class StopOnCtrlC(TrainerCallback):
    def __init__(self):
        self.requested = False
        self.checkpoint_step: int | None = None  # where the requested checkpoint was written
        self._previous_handler = None

    def __enter__(self):
        self._previous_handler = signal.signal(signal.SIGINT, self.request_stop)
        return self

    def __exit__(self, *exc_info):
        signal.signal(signal.SIGINT, self._previous_handler)

    def request_stop(self, signum=None, frame=None) -> None:
        self.requested = True
        # The next Ctrl-C raises KeyboardInterrupt wherever the program is.
        signal.signal(signal.SIGINT, signal.default_int_handler)
        log("Stopping after this step to write a checkpoint (press Ctrl-C again to quit at once) ...")

    def on_step_end(self, args, state, control, **kwargs):
        if self.requested:
            control.should_save = True
            control.should_training_stop = True

    def on_save(self, args, state, control, **kwargs):
        if self.requested:
            self.checkpoint_step = state.global_step

    def on_epoch_end(self, args, state, control, **kwargs):
        if self.requested:  # the checkpoint of this step is written; no evaluation or second save
            control.should_save = control.should_evaluate = control.should_log = False


def resume_command(argv: list[str] | None) -> str:
    words = [word for word in (argv if argv is not None else sys.argv[1:]) if word != "--resume"]
    return shlex.join(["python", "instruct_ger.py", *words, "--resume"])
