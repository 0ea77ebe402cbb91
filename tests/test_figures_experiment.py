import numpy as np
import pandas as pd

from lungsynth.figures_data import nodule_slice
from lungsynth.figures_experiment import dice_change_figure, pick_example_cases, prediction_examples_figure
from lungsynth.io import save_figure


def change_table():
    return pd.DataFrame({
        "case": ["w1", "w2", "o1", "o2", "o3", "t1", "t2", "t3", "t4"],
        "subgroup": ["worst validation"] * 2 + ["other validation"] * 3 + ["test"] * 4,
        "change": [0.2, 0.0, 0.1, -0.05, 0.0, 0.3, -0.2, 0.01, 0.0],
    })


def test_figure_3_has_one_panel_per_subgroup_with_counts(tmp_path):
    fig = dice_change_figure(change_table())
    titles = [ax.get_title() for ax in fig.axes]
    assert len(fig.axes) == 3
    assert titles[0].startswith("worst validation (n=2)") and "1 improved, 1 unchanged, 0 worse" in titles[0]
    assert "2 improved, 1 unchanged, 1 worse" in titles[2]
    assert [len(ax.patches) for ax in fig.axes] == [2, 3, 4]
    save_figure(tmp_path / "figure3.png", fig)
    assert (tmp_path / "figure3.png").stat().st_size > 1000


def test_example_cases_span_best_worst_and_median():
    assert pick_example_cases(change_table(), n=3) == ["t1", "t2", "t4"]
    assert pick_example_cases(change_table(), n=10) == ["t1", "t2", "t4", "t3"]
    assert pick_example_cases(change_table().iloc[:2]) == []


def test_shown_slice_has_the_most_nodule_of_the_first_non_empty_mask():
    truth = np.zeros((5, 8, 8), np.uint8)
    truth[3, 2:6, 2:6] = 1
    truth[1, 2:3, 2:3] = 1
    assert nodule_slice(truth) == 3
    prediction = np.zeros_like(truth)
    prediction[4, :2, :2] = 1
    assert nodule_slice(truth, prediction) == 3
    assert nodule_slice(np.zeros_like(truth), prediction) == 4
    assert nodule_slice(np.zeros_like(truth)) == 2


def test_prediction_examples_figure_has_truth_and_one_panel_per_model(tmp_path):
    rng = np.random.default_rng(0)
    image = rng.normal(-700, 100, (6, 16, 16))
    truth = np.zeros((6, 16, 16), np.uint8)
    truth[2, 5:9, 5:9] = 1
    examples = [{"case": c, "image": image, "truth": truth,
                 "predictions": {"Real": truth, "Real+Synthetic": np.zeros_like(truth)},
                 "dice": {"Real": 1.0, "Real+Synthetic": 0.0}} for c in ("t1", "t2")]
    fig = prediction_examples_figure(examples, title="run 1 of each arm")
    assert len(fig.axes) == 6 and fig._suptitle.get_text().startswith("run 1 of each arm\n")
    assert "Dice 1.000" in fig.axes[1].get_title() and fig.axes[2].get_title().startswith("Real+Synthetic")
    save_figure(tmp_path / "examples.png", fig)
    assert (tmp_path / "examples.png").exists()


def test_load_examples_reads_every_model(tmp_path):
    from lungsynth.figures_experiment import load_examples
    from lungsynth.io import Geometry, write_nifti

    g = Geometry((1.0, 1.0, 1.0), (0.0, 0.0, 0.0))
    for name in ("img", "truth", "pa", "pb"):
        write_nifti(tmp_path / f"{name}.nii.gz", np.full((3, 4, 4), len(name), np.int16), g)
    examples = load_examples(["c"], {"c": tmp_path / "img.nii.gz"}, {"c": tmp_path / "truth.nii.gz"},
                             {"A": {"c": tmp_path / "pa.nii.gz"}, "B": {"c": tmp_path / "pb.nii.gz"}},
                             dice={"A": {"c": 0.25}})
    assert examples[0]["image"].shape == (3, 4, 4) and list(examples[0]["predictions"]) == ["A", "B"]
    assert examples[0]["dice"] == {"A": 0.25}


def test_figure_3_shows_the_spread_of_each_arms_runs_beside_the_cases():
    runs = pd.DataFrame({"arm": ["Real"] * 3 + ["Real+Synthetic"] * 3, "run": [1, 2, 3] * 2,
                         "mean_dice": [0.4, 0.45, 0.5, 0.5, 0.55, 0.6]})
    fig = dice_change_figure(change_table(), run_means=runs)
    assert len(fig.axes) == 4
    spread = fig.axes[3]
    assert [t.get_text() for t in spread.get_xticklabels()] == ["Real", "Real+Synthetic"]
    from matplotlib.collections import PathCollection

    assert sum(len(c.get_offsets()) for c in spread.collections if isinstance(c, PathCollection)) == 6
