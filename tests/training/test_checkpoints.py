"""The checkpoint policy as a pure function of the times involved, and which checkpoint a resume takes."""

import os
import signal
import time
from types import SimpleNamespace

import pytest
from transformers import TrainerControl

from llm_instruct.training.checkpoints import CheckpointPolicy, newest_complete, should_save
from llm_instruct.training.interrupt import StopOnCtrlC


@pytest.mark.parametrize(
    ("final", "interval", "elapsed", "expected"),
    [
        (True, 0.0, 3600.0, False),  # never after the final epoch: the model directory follows at once
        (False, None, 3600.0, False),  # checkpoints switched off
        (False, 0.0, 0.0, True),  # 0: after every epoch
        (False, 10.0, 599.0, False),
        (False, 10.0, 600.0, True),
    ],
)
def test_should_save(final, interval, elapsed, expected):
    assert should_save(final_epoch=final, interval_minutes=interval, seconds_since_last_save=elapsed) is expected


class FakeClock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def epoch_end(policy, step, max_steps):
    control = TrainerControl()
    state = SimpleNamespace(global_step=step, max_steps=max_steps, is_world_process_zero=True)
    policy.on_epoch_end(None, state, control)
    return control.should_save


def test_policy_saves_once_the_interval_has_passed_since_the_start_or_the_last_save(capsys):
    clock = FakeClock()
    policy = CheckpointPolicy(interval_minutes=10, clock=clock)
    policy.on_train_begin(None, None, None)
    clock.now = 300
    assert not epoch_end(policy, 10, 40)
    clock.now = 660
    assert epoch_end(policy, 20, 40)
    clock.now = 702  # writing took 42 s
    policy.on_save(SimpleNamespace(output_dir="out"), SimpleNamespace(global_step=20, is_world_process_zero=True), None)
    assert "Checkpoint: wrote out/checkpoint-20 (step 20) in 42.0 s" in capsys.readouterr().err
    clock.now = 1200  # 498 s after the last save
    assert not epoch_end(policy, 30, 40)
    clock.now = 9999
    assert not epoch_end(policy, 40, 40)  # the final epoch


def plant(directory, name, complete):
    checkpoint = directory / name
    checkpoint.mkdir(parents=True)
    (checkpoint / "model.safetensors").write_bytes(b"weights")
    (checkpoint / "config.json").write_text("{}")
    if complete:
        (checkpoint / "trainer_state.json").write_text("{}")
    return checkpoint


def test_resume_takes_the_newest_complete_checkpoint(tmp_path):
    older = plant(tmp_path, "checkpoint-9", complete=True)
    newest = plant(tmp_path, "checkpoint-10", complete=True)  # 10 after 9: ordered by number, not by name
    assert newest_complete(tmp_path) == (newest, [])
    cut_off = plant(tmp_path, "checkpoint-11", complete=False)
    assert newest_complete(tmp_path) == (newest, [cut_off])
    assert older.exists()


def test_no_complete_checkpoint(tmp_path):
    assert newest_complete(tmp_path / "missing") == (None, [])
    partial = plant(tmp_path, "checkpoint-3", complete=False)
    assert newest_complete(tmp_path) == (None, [partial])


def test_first_ctrl_c_asks_for_a_checkpoint_second_quits_at_once(capsys):
    before = signal.getsignal(signal.SIGINT)
    with StopOnCtrlC() as stop:
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(0.05)
        assert stop.requested
        control = TrainerControl()
        stop.on_step_end(None, None, control)
        assert control.should_save and control.should_training_stop
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.05)
    assert signal.getsignal(signal.SIGINT) is before
    assert "Stopping after this step to write a checkpoint" in capsys.readouterr().err
