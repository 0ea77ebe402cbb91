import numpy as np
import pandas as pd

from lungsynth.ddpm.figures import figure2, loss_curve_figure, nodule_slice
from lungsynth.io import save_figure


def test_loss_curve_png_is_written(tmp_path):
    losses = pd.DataFrame({"step": range(1, 101), "loss": np.linspace(1, 0.1, 100), "lr": 1e-4,
                           "seconds": np.arange(100.0)})
    save_figure(tmp_path / "loss.png", loss_curve_figure(losses))
    assert (tmp_path / "loss.png").read_bytes()[:4] == b"\x89PNG"


def test_figure2_shows_mask_synthetic_and_real_rows(tmp_path):
    mask = np.zeros((8, 16, 16), np.uint8)
    mask[5, 4:8, 4:8] = 1
    mask[2, 4:6, 4:6] = 1
    assert nodule_slice(mask) == 5
    cases = [{"case": f"c{i}", "mask": mask, "synthetic": np.full(mask.shape, -800.0),
              "real": np.full(mask.shape, -700.0)} for i in range(3)]
    fig = figure2(cases)
    assert len(fig.axes) == 9
    save_figure(tmp_path / "fig2.png", fig)
    assert (tmp_path / "fig2.png").stat().st_size > 1000
    assert len(figure2([{k: v for k, v in c.items() if k != "real"} for c in cases]).axes) == 6
