"""Which dvc.yaml commands the flow runs in its own process, and which it leaves to DVC."""

from __future__ import annotations

from mlpipe.pipeline.runner import in_process_body
from mlpipe.pipeline.stages.train import train_model


def test_the_exact_stage_command_maps_to_its_body():
    assert in_process_body("python -m mlpipe.pipeline.stages.train") == ("train", train_model)


def test_any_other_command_is_left_to_dvc():
    assert in_process_body("python -m mlpipe.pipeline.stages.train --fast") is None
    assert in_process_body("python other.py") is None
    assert in_process_body(["python -m mlpipe.pipeline.stages.train", "echo done"]) is None
