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


def test_coverage_and_norm_consistency_figures_draw_every_map_and_region(tmp_path):
    from lungsynth.ddpm.figures import norm_consistency_figure, patch_coverage_figure

    cover = np.ones((8, 12, 16))
    fig = patch_coverage_figure({"corner": cover * 0.5, "padded": cover})
    assert [a.get_title() for a in fig.axes[:2]] == ["corner draw", "padded draw"]
    table = pd.DataFrame([{"crop": 0, "t": t, "region": r, "rms_difference_hu": 1.0, "rms_error_windowed_hu": 5.0}
                          for t in (50, 500) for r in ("lung", "outside")])
    fig = norm_consistency_figure(table)
    assert len(fig.axes[0].lines) == 4      # per region: the difference and the windowed error
    save_figure(tmp_path / "n.png", fig)
    assert (tmp_path / "n.png").read_bytes()[:4] == b"\x89PNG"
