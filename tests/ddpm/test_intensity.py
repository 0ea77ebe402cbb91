import numpy as np
import torch

from lungsynth.ddpm.intensity import hu_to_model, model_to_hu, to_hu_int16
from lungsynth.ddpm.settings import IntensitySettings

WINDOW = IntensitySettings.from_config({"hu_min": -1024, "hu_max": 1024})


def test_intensity_mapping_round_trips_within_the_window():
    hu = np.arange(-1024, 1025, dtype=np.int16)
    x = hu_to_model(hu, WINDOW)
    assert x.min() == -1.0 and x.max() == 1.0
    np.testing.assert_array_equal(to_hu_int16(x, WINDOW), hu)


def test_intensity_mapping_clips_outside_the_window_and_agrees_for_numpy_and_torch():
    hu = np.array([-3000, -1024, 0, 500, 3000], dtype=np.float32)
    x_np = hu_to_model(hu, WINDOW)
    x_torch = hu_to_model(torch.from_numpy(hu), WINDOW)
    np.testing.assert_allclose(x_np, x_torch.numpy())
    np.testing.assert_allclose(x_np, [-1, -1, 0, 500 / 1024, 1])
    np.testing.assert_allclose(model_to_hu(np.array([-2.0, 2.0]), WINDOW), [-1024, 1024])
