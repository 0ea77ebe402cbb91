"""Fixtures of the nnU-Net tests: toy cases and one planned dataset, shared by the session."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from lungsynth.arms import REFERENCE

from .toys import tiny_settings, write_toy_cases


@pytest.fixture(autouse=True)
def _one_thread():
    torch.set_num_threads(1)


@pytest.fixture(scope="session")
def toy_cases(tmp_path_factory) -> dict[str, tuple[Path, Path]]:
    """Six toy cases: toy000-toy003 train, toy004 validation, toy005 test."""
    return write_toy_cases(tmp_path_factory.mktemp("crops"), 6, seed=3)


@pytest.fixture(scope="session")
def preprocessed(tmp_path_factory, toy_cases):
    """The Real arm's raw and preprocessed dataset of the toy cases (planned once per session)."""
    from lungsynth.nnunet.dataset import write_raw_dataset
    from lungsynth.nnunet.plans import plan_and_preprocess

    root = tmp_path_factory.mktemp("nnunet")
    settings = tiny_settings()
    name = REFERENCE.dataset_name(settings.datasets["Real"])
    train = {c: toy_cases[c] for c in ("toy000", "toy001", "toy002", "toy003")}
    validation = {"toy004": toy_cases["toy004"]}
    write_raw_dataset(root / "raw" / name, train, validation)
    plans_file = plan_and_preprocess(root / "raw" / name, root / "preprocessed", settings.plan, threads=1)
    return {"root": root, "settings": settings, "dataset": root / "preprocessed" / name,
            "raw": root / "raw" / name, "plans_file": plans_file}
