"""The checkpoint policy as a pure function of the times involved, and which checkpoint a resume takes."""

import json
import os
import signal
import time
from types import SimpleNamespace

import pytest
from transformers import TrainerControl

from llm_instruct.cli import UserError
from llm_instruct.models.lora import LoraSettings
from llm_instruct.training.checkpoints import (
    CheckpointPolicy,
    check_resumable,
    newest_complete,
    remove_checkpoints,
    should_save,
)
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
        (checkpoint / "trainer_state.json").write_text(json.dumps({"global_step": int(name.split("-")[1])}))
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
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.05)
    assert signal.getsignal(signal.SIGINT) is before
    assert "Stopping after this step to write a checkpoint" in capsys.readouterr().err


def ctrl_c_at(step: int, steps_per_epoch: int, max_steps: int) -> tuple[TrainerControl, TrainerControl]:
    """The flags a Ctrl-C during step leaves at the step's end and at the epoch's end, where the
    Trainer's own flow asked to log and evaluate at every epoch's end."""
    stop = StopOnCtrlC()
    stop.requested = True
    state = SimpleNamespace(global_step=step, max_steps=max_steps, epoch=step / steps_per_epoch)
    at_step = TrainerControl()
    stop.on_step_end(None, state, at_step)
    at_epoch_end = TrainerControl(should_log=True, should_evaluate=True)
    stop.on_epoch_end(None, state, at_epoch_end)
    return at_step, at_epoch_end


def test_ctrl_c_in_the_middle_of_an_epoch_logs_and_saves_at_the_step():
    at_step, at_epoch_end = ctrl_c_at(6, 4, 12)
    assert at_step.should_training_stop and at_step.should_save and at_step.should_log
    assert not (at_epoch_end.should_save or at_epoch_end.should_log or at_epoch_end.should_evaluate)


def test_ctrl_c_in_an_epochs_last_step_keeps_its_loss_and_evaluation_in_the_checkpoint():
    at_step, at_epoch_end = ctrl_c_at(8, 4, 12)
    assert at_step.should_training_stop and not at_step.should_save
    assert at_epoch_end.should_log and at_epoch_end.should_evaluate and at_epoch_end.should_save


def test_ctrl_c_in_the_last_step_writes_no_checkpoint():
    at_step, at_epoch_end = ctrl_c_at(12, 4, 12)
    assert not at_step.should_save
    assert at_epoch_end.should_log and at_epoch_end.should_evaluate and not at_epoch_end.should_save


def test_an_unreadable_trainer_state_marks_a_cut_off_checkpoint(tmp_path):
    cut_off = plant(tmp_path, "checkpoint-4", complete=False)
    (cut_off / "trainer_state.json").write_text("")
    assert newest_complete(tmp_path) == (None, [cut_off])


def test_finished_runs_remove_only_their_checkpoints(tmp_path):
    plant(tmp_path / "checkpoints-model", "checkpoint-4", complete=True)
    remove_checkpoints(tmp_path / "checkpoints-model")
    assert not (tmp_path / "checkpoints-model").exists()
    plant(tmp_path / "checkpoints-model", "checkpoint-4", complete=True)
    (tmp_path / "checkpoints-model" / "notes.txt").write_text("mine")
    remove_checkpoints(tmp_path / "checkpoints-model")
    assert [p.name for p in (tmp_path / "checkpoints-model").iterdir()] == ["notes.txt"]


@pytest.mark.parametrize(
    ("adapter", "settings", "message"),
    [
        (None, LoraSettings(16, 32, 0.05), "{c} holds all weights, from a run without --lora; resume without --lora"),
        ({"r": 16, "lora_alpha": 32}, None, "{c} holds LoRA adapters, from a run with --lora; resume with --lora"),
        (
            {"r": 8, "lora_alpha": 32, "target_modules": ["query_key_value"]},
            LoraSettings(16, 32, 0.05, ("dense", "query_key_value")),
            (
                "{c} holds LoRA adapters with r 8 (now 16), target_modules ['query_key_value'] (now ['dense', "
                "'query_key_value']); resume with the LoRA flags of that run"
            ),
        ),
        ({"r": 16, "lora_alpha": 32, "target_modules": ["query_key_value"]}, LoraSettings(16, 32, 0.1), None),
    ],
)
def test_a_checkpoint_resumes_only_a_run_of_its_kind(tmp_path, adapter, settings, message):
    checkpoint = plant(tmp_path, "checkpoint-4", complete=True)
    if adapter is not None:
        (checkpoint / "adapter_config.json").write_text(json.dumps(adapter))
    if message is None:
        check_resumable(checkpoint, settings)
        return
    with pytest.raises(UserError) as raised:
        check_resumable(checkpoint, settings)
    assert str(raised.value) == message.format(c=checkpoint)
