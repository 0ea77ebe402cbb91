import json

import numpy as np
import pytest

from lungsynth.errors import InputError
from lungsynth.io import write_nifti
from lungsynth.nnunet.dataset import write_raw_dataset
from lungsynth.nnunet.plans import plan_and_preprocess, small_plans
from lungsynth.nnunet.settings import PlanSettings

from .toys import GEOMETRY, tiny_settings


def test_small_plan_is_read_by_nnunet_with_our_sizes(preprocessed):
    from nnunetv2.utilities.plans_handling.plans_handler import PlansManager

    plans = PlansManager(str(preprocessed["plans_file"]))
    assert plans.plans_name == "lungsynthTiny"
    config = plans.get_configuration("3d_fullres")
    assert list(config.patch_size) == [32, 32, 32] and config.batch_size == 2
    arch = config.network_arch_init_kwargs
    assert list(arch["features_per_stage"]) == [8, 16, 32] and arch["n_stages"] == 3
    assert [list(s) for s in arch["strides"]] == [[1, 1, 1], [2, 2, 2], [2, 2, 2]]
    assert config.data_identifier == "lungsynthTiny_3d_fullres"
    assert sorted(plans.available_configurations) == ["3d_fullres"]


def test_preprocessing_wrote_every_case_and_our_split(preprocessed):
    folder = preprocessed["dataset"]
    cases = sorted(p.name[: -len(".b2nd")] for p in (folder / "lungsynthTiny_3d_fullres").glob("*.b2nd")
                   if not p.name.endswith("_seg.b2nd"))
    assert cases == ["toy000", "toy001", "toy002", "toy003", "toy004"]
    assert json.loads((folder / "splits_final.json").read_text()) == [
        {"train": ["toy000", "toy001", "toy002", "toy003"], "val": ["toy004"]}]
    assert (folder / "dataset_fingerprint.json").exists() and (folder / "gt_segmentations").is_dir()
    assert not [p for p in folder.parent.iterdir() if p.name.startswith(".tmp")]


def test_integrity_check_failure_is_an_input_error(tmp_path, toy_cases):
    bad = tmp_path / "bad.nii.gz"
    write_nifti(bad, np.full((32, 32, 32), 2, np.uint8), GEOMETRY)  # label 2 is not in dataset.json
    raw = tmp_path / "raw" / "Dataset509_Bad"
    write_raw_dataset(raw, {"toy000": toy_cases["toy000"], "toy001": (toy_cases["toy001"][0], bad)},
                      {"toy004": toy_cases["toy004"]})
    with pytest.raises(InputError, match="integrity"):
        plan_and_preprocess(raw, tmp_path / "preprocessed", tiny_settings().plan, threads=1)
    assert not (tmp_path / "preprocessed" / "Dataset509_Bad").exists()


DEFAULT_PLANS = {
    "plans_name": "nnUNetPlans", "transpose_forward": [0, 1, 2], "transpose_backward": [0, 1, 2],
    "configurations": {
        "3d_fullres": {"data_identifier": "nnUNetPlans_3d_fullres", "patch_size": [64, 64, 64], "batch_size": 2,
                       "spacing": [2.5, 2.5, 2.5],
                       "architecture": {"arch_kwargs": {"n_stages": 5, "features_per_stage": [32, 64, 128, 256, 320]}}},
        "2d": {"data_identifier": "nnUNetPlans_2d", "patch_size": [64, 64], "batch_size": 40, "spacing": [2.5, 2.5],
               "architecture": {"arch_kwargs": {"n_stages": 5}}},
        "3d_cascade_fullres": {"inherits_from": "3d_fullres", "previous_stage": "3d_lowres"},
    },
}


def plan_of(features=(16, 32, 64, 128), patch_size=(32, 32, 32), batch_size=None, configuration="3d_fullres",
            name="p") -> PlanSettings:
    return PlanSettings.from_config({"features": None if features is None else list(features),
                                     "patch_size": None if patch_size is None else list(patch_size),
                                     "batch_size": batch_size, "configuration": configuration, "plans_name": name})


def test_small_plans_resizes_one_configuration_only():
    plans = small_plans(DEFAULT_PLANS, plan_of((16, 32, 64, 128), (64, 32, 32), 3, configuration="3d_fullres", name="small"))
    config = plans["configurations"]["3d_fullres"]
    assert list(plans["configurations"]) == ["3d_fullres"] and plans["plans_name"] == "small"
    assert config["patch_size"] == [64, 32, 32] and config["batch_size"] == 3
    assert config["architecture"]["arch_kwargs"]["n_stages"] == 4
    assert config["architecture"]["arch_kwargs"]["n_conv_per_stage_decoder"] == [2, 2, 2]
    assert DEFAULT_PLANS["configurations"]["3d_fullres"]["patch_size"] == [64, 64, 64]  # input untouched


def test_small_plans_follows_nnunet_axis_order():
    plans = dict(DEFAULT_PLANS, transpose_forward=[2, 0, 1])
    config = small_plans(plans, plan_of((8, 16), (16, 24, 32), configuration="3d_fullres", name="p"))["configurations"]["3d_fullres"]
    assert config["patch_size"] == [32, 16, 24]


def test_small_plans_2d_takes_the_in_plane_sides():
    config = small_plans(DEFAULT_PLANS, plan_of((8, 16, 32), (1, 48, 64), 4, configuration="2d", name="p"))["configurations"]["2d"]
    assert config["patch_size"] == [48, 64] and config["batch_size"] == 4


def test_small_plans_resolves_inherited_configurations():
    config = small_plans(DEFAULT_PLANS, plan_of((8, 16), (32, 32, 32)).replace(configuration="3d_cascade_fullres"))
    config = config["configurations"]["3d_cascade_fullres"]
    assert config["spacing"] == [2.5, 2.5, 2.5] and "previous_stage" not in config


@pytest.mark.parametrize("plan, problem", [
    (plan_of((8, 16, 32, 64, 128), (32, 32, 32)), "stages"),
    (plan_of((8, 16, 32), (34, 32, 32)), "divide"),
])
def test_small_plans_rejects_patches_that_do_not_fit_the_net(plan, problem):
    with pytest.raises(InputError, match=problem) as err:
        small_plans(DEFAULT_PLANS, plan)
    assert err.value.where == "nnunet.plan.patch_size"


def test_small_plans_rejects_configuration_nnunet_did_not_plan():
    with pytest.raises(InputError, match="3d_lowres"):
        small_plans(DEFAULT_PLANS, plan_of(configuration="3d_lowres"))


def test_none_keeps_nnunets_own_plan():
    plans = small_plans(DEFAULT_PLANS, plan_of(None, None, None, configuration="3d_fullres", name="full"))
    config = plans["configurations"]["3d_fullres"]
    assert config["patch_size"] == [64, 64, 64] and config["batch_size"] == 2
    assert config["architecture"]["arch_kwargs"]["features_per_stage"] == [32, 64, 128, 256, 320]
    assert config["data_identifier"] == "full_3d_fullres"


def test_patch_without_features_gets_nnunets_depth_and_widths():
    config = small_plans(DEFAULT_PLANS, plan_of(None, (32, 32, 32), None, configuration="3d_fullres", name="p"))
    arch = config["configurations"]["3d_fullres"]["architecture"]["arch_kwargs"]
    assert arch["n_stages"] == 4 and arch["features_per_stage"] == [32, 64, 128, 256]  # 32 -> 4 at the bottom


def test_more_threads_preprocess_alike_without_spawn(preprocessed, tmp_path):
    """threads > 1 runs nnU-Net's pools by fork (a spawn pool would re-run a Snakemake script)."""
    import blosc2

    settings = preprocessed["settings"]
    plans_file = plan_and_preprocess(preprocessed["raw"], tmp_path, settings.plan, threads=2)
    assert json.loads(plans_file.read_text()) == json.loads(preprocessed["plans_file"].read_text())
    ours = tmp_path / "Dataset501_Real" / "lungsynthTiny_3d_fullres" / "toy001.b2nd"
    reference = preprocessed["dataset"] / "lungsynthTiny_3d_fullres" / "toy001.b2nd"
    assert np.array_equal(blosc2.open(str(ours))[:], blosc2.open(str(reference))[:])
