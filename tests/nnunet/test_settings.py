import pytest

from lungsynth.errors import InputError
from lungsynth.nnunet.settings import NnunetSettings, dataset_name

from .toys import tiny_settings


def test_settings_build_nested_sections_from_config():
    s = tiny_settings()
    assert s.plan.features == (8, 16, 32) and s.plan.patch_size == (32, 32, 32)
    assert s.train.epochs == 2 and s.train.iterations_per_epoch == 3
    assert s.predict.tile_batch == 4 and s.predict.mirroring is False


def test_dataset_name_keeps_letters_and_digits_of_the_arm():
    assert dataset_name(503, "Real+Synthetic") == "Dataset503_RealSynthetic"
    assert tiny_settings().dataset_name("Real") == "Dataset501_Real"


def test_run_seeds_differ_per_run_and_repeat_across_arms():
    s = tiny_settings(runs=3)
    assert [s.run_seed(k) for k in (1, 2, 3)] == [7, 8, 9]
    with pytest.raises(InputError, match="nnunet.runs"):
        s.run_seed(4)


@pytest.mark.parametrize("key, value, where", [
    ("unknown_key", 1, "nnunet"),
    ("configuration", "4d", "nnunet.configuration"),
    ("datasets", {"Real": 501, "Synthetic": 501}, "nnunet.datasets"),
    ("datasets", {"Fake": 501}, "nnunet.datasets"),
    ("epochs", 0, "nnunet.epochs"),
    ("initial_lr", 0, "nnunet.initial_lr"),
    ("val_iterations_per_epoch", 0, "nnunet.val_iterations_per_epoch"),
    ("plan", {"patch_size": [32, 32]}, "nnunet.plan.patch_size"),
    ("plan", {"depth": 3}, "nnunet.plan"),
    ("predict", {"tile_batch": 0}, "nnunet.predict.tile_batch"),
])
def test_bad_settings_name_the_key(key, value, where):
    with pytest.raises(InputError) as err:
        tiny_settings(**{key: value})
    assert err.value.where == where


def test_missing_key_is_named():
    with pytest.raises(InputError, match="missing key"):
        NnunetSettings.from_config({"datasets": {"Real": 501}, "configuration": "3d_fullres"})


def test_null_plan_entries_mean_nnunets_own_plan():
    s = tiny_settings(plan={"features": None, "patch_size": None, "batch_size": None})
    assert s.plan.features is None and s.plan.patch_size is None and s.plan.batch_size is None
