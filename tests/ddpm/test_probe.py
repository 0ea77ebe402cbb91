"""The norm-consistency probe: whole-crop against windowed predictions of the same noised crops."""

import dataclasses

import numpy as np

from lungsynth.ddpm.checkpoint import load_model
from lungsynth.ddpm.probe import norm_consistency

from .toys import toy_volumes


def test_whole_and_windowed_predictions_agree_where_one_window_covers_the_crop(tiny_checkpoint):
    loaded = load_model(tiny_checkpoint, "cpu")
    images, masks = toy_volumes(2)
    whole_window = dataclasses.replace(loaded, patch_size=tuple(images[0].shape))
    table = norm_consistency(whole_window, images, masks, noise_levels=(0.05, 0.5))
    assert len(table) == 2 * 2 * 2 and set(table.region) == {"lung", "outside"}
    assert (table.rms_difference_hu < 1e-2).all(), table


def test_windows_smaller_than_the_crop_see_other_norm_statistics(tiny_checkpoint):
    loaded = load_model(tiny_checkpoint, "cpu")     # trained on 8^3 patches of 16^3 crops
    images, masks = toy_volumes(1)
    table = norm_consistency(loaded, images, masks, noise_levels=(0.05, 0.8), lung_threshold_hu=-400)
    assert np.isfinite(table[["rms_difference_hu", "rms_error_whole_hu", "rms_error_windowed_hu"]]).all().all()
    assert (table.rms_difference_hu > 0).all()
    lung = table[table.region == "lung"]
    assert (lung.rms_error_windowed_hu > 0).all() and np.isfinite(lung.relative).all()
