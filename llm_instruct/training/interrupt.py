"""Ctrl-C during training and while the finished model is written: nothing done is lost.

During training, the first Ctrl-C lets the current step finish, writes a checkpoint there
and exits 130.

A Ctrl-C that lands in the middle of a step would lose everything since the last
checkpoint, possibly the whole run. The first Ctrl-C only asks the Trainer to stop after
the step in progress and save; a second one quits at once, as Ctrl-C normally does.
Where that step ends an epoch, the epoch's loss and evaluation are logged before the
checkpoint is written; where it is the run's last step, the run is complete and needs no
checkpoint: its model is saved, and only what follows (the evaluation) is skipped. While
the finished model is written, the first Ctrl-C waits for the writing to end.
Used in single-process runs: a launcher such as torchrun stops its workers by itself.
"""

import shlex
import signal
import sys

from transformers import TrainerCallback

from ..cli import log


class FirstCtrlC:
    """Within `with`, the first Ctrl-C only sets `requested` and says what follows; a second
    one raises KeyboardInterrupt wherever the program is, as Ctrl-C normally does."""

    message = "Stopping ..."

    def __init__(self):
        self.requested = False
        self._previous_handler = None

    def __enter__(self):
        self._previous_handler = signal.signal(signal.SIGINT, self.request_stop)
        return self

    def __exit__(self, *exc_info):
        signal.signal(signal.SIGINT, self._previous_handler)

    def request_stop(self, signum=None, frame=None) -> None:
        self.requested = True
        signal.signal(signal.SIGINT, signal.default_int_handler)
        log(self.message)


class WhileSaving(FirstCtrlC):
    message = "Finishing writing the model (press Ctrl-C again to abandon it) ..."


class StopOnCtrlC(FirstCtrlC, TrainerCallback):
    message = "Stopping after this step to write a checkpoint (press Ctrl-C again to quit at once) ..."

    def __init__(self):
        super().__init__()
        self.checkpoint_step: int | None = None  # where the requested checkpoint was written

    def on_step_end(self, args, state, control, **kwargs):
        if not self.requested:
            return
        control.should_training_stop = True
        if not float(state.epoch).is_integer():
            # The loss since the last log goes into the checkpoint's history, so that a resumed
            # run reports the whole epoch's loss.
            control.should_save = control.should_log = True

    def on_save(self, args, state, control, **kwargs):
        if self.requested:
            self.checkpoint_step = state.global_step

    def on_epoch_end(self, args, state, control, **kwargs):
        if not self.requested:
            return
        if float(state.epoch).is_integer():  # the step ended an epoch: log and evaluate it, then save
            control.should_save = state.global_step < state.max_steps
        else:  # the checkpoint of this step is written; no evaluation or second save
            control.should_save = control.should_evaluate = control.should_log = False


def resume_command(argv: list[str] | None) -> str:
    words = [word for word in (argv if argv is not None else sys.argv[1:]) if word != "--resume"]
    return shlex.join(["python", "instruct_ger.py", *words, "--resume"])
