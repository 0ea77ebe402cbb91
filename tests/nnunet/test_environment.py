import os

import pytest

from lungsynth.nnunet.environment import nnunet_environment, seed_everything


def test_environment_points_nnunet_at_the_given_folders_and_restores(tmp_path, monkeypatch):
    from nnunetv2 import paths  # imported before the variables are set

    monkeypatch.setenv("nnUNet_results", "/elsewhere")
    monkeypatch.delenv("nnUNet_raw", raising=False)
    with nnunet_environment(raw=tmp_path / "raw", results=tmp_path / "run1"):
        assert os.fspath(paths.nnUNet_raw) == str((tmp_path / "raw").resolve())
        assert os.fspath(paths.nnUNet_results) == str((tmp_path / "run1").resolve())
        assert not paths.nnUNet_preprocessed.is_set()
        assert os.environ["nnUNet_n_proc_DA"] == "0"
    assert os.environ["nnUNet_results"] == "/elsewhere" and "nnUNet_raw" not in os.environ


def test_environment_is_restored_after_an_error(tmp_path):
    before = dict(os.environ)
    with pytest.raises(ZeroDivisionError):
        with nnunet_environment(preprocessed=tmp_path, augmentation_workers=3):
            1 / 0
    assert dict(os.environ) == before


def test_seed_everything_repeats_all_three_generators():
    import random

    import numpy as np
    import torch

    def draw():
        return random.random(), np.random.rand(), torch.rand(1).item()

    seed_everything(5)
    first = draw()
    seed_everything(5)
    assert draw() == first
    seed_everything(6)
    assert draw() != first


def test_nnunets_prints_go_to_stderr(capsys):
    with nnunet_environment():
        print("Epoch 1")
    out, err = capsys.readouterr()
    assert out == "" and "Epoch 1" in err
