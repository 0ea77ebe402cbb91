"""Figures of the utility experiment: the paper's Figure 3 and test cases with both models' masks.

Functions take tables and arrays and return matplotlib figures; the caller saves them with
:func:`lungsynth.io.save_figure`.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from .stats import REFERENCE_LABEL, SUBGROUPS, TARGETED_LABEL  # noqa: E402

from .figures_data import WINDOW_HU, nodule_slice  # noqa: E402
COLORS = {"improved": "#2a9d8f", "worse": "#e76f51", "unchanged": "#9e9e9e"}
MODEL_COLORS = ("#e9c46a", "#f4a261", "#8ecae6", "#c77dff")
TOLERANCE = 1e-9  # |change| below this is "unchanged"


def dice_change_figure(change: pd.DataFrame, arm: str = TARGETED_LABEL, reference: str = REFERENCE_LABEL,
                       run_means: pd.DataFrame | None = None):
    """The paper's Figure 3: per-case Dice change ``reference -> arm`` in the three subgroups.

    ``change`` is :func:`lungsynth.stats.dice_change`'s table (``case, subgroup, change``).
    One panel per subgroup (worst validation, other validation, test), cases sorted by
    change, bars coloured improved / unchanged / worse, counts in the title. With ``run_means``
    (:func:`lungsynth.stats.run_means` of the test set) a last panel shows every run's mean test
    Dice per arm: the spread that decides what Welch's test on Table 1 can see.
    """
    panels = len(SUBGROUPS) + (run_means is not None)
    fig, axes = plt.subplots(1, panels, figsize=(4.2 * panels, 3.6), squeeze=False)
    for ax in axes[0][1:len(SUBGROUPS)]:
        ax.sharey(axes[0][0])
    limit = max(0.05, float(np.nanmax(np.abs(change["change"]))) * 1.1) if len(change) else 1.0
    for ax, subgroup in zip(axes[0], SUBGROUPS):
        values = np.sort(change.loc[change["subgroup"] == subgroup, "change"].to_numpy(float))
        kinds = np.where(values > TOLERANCE, "improved", np.where(values < -TOLERANCE, "worse", "unchanged"))
        ax.bar(np.arange(len(values)), values, width=0.85, color=[COLORS[k] for k in kinds])
        ax.axhline(0, color="black", linewidth=0.8)
        counts = {k: int(np.sum(kinds == k)) for k in COLORS}
        ax.set_title(f"{subgroup} (n={len(values)})\n{counts['improved']} improved, "
                     f"{counts['unchanged']} unchanged, {counts['worse']} worse", fontsize=9)
        ax.set_xlabel("case (sorted by change)")
        ax.set_xticks([])
        ax.set_ylim(-limit, limit)
        if len(values) == 0:
            ax.text(0.5, 0.5, "no cases", ha="center", va="center", transform=ax.transAxes, color="gray")
    axes[0][0].set_ylabel(f"Dice({arm}) - Dice({reference})")
    if run_means is not None:
        ax = axes[0][-1]
        arms = [a for a in (REFERENCE_LABEL, "Synthetic", arm) if a in set(run_means["arm"])]
        for i, name in enumerate(arms):
            values = run_means.loc[run_means["arm"] == name, "mean_dice"].to_numpy(float)
            ax.scatter(np.full(len(values), i) + np.linspace(-0.12, 0.12, len(values)), values, s=22,
                       color="tab:blue" if name == REFERENCE_LABEL else "tab:orange")
            if len(values):
                ax.hlines(values.mean(), i - 0.25, i + 0.25, color="black", linewidth=1)
        ax.set_xticks(range(len(arms)), arms, fontsize=8)
        ax.set_ylabel("mean test Dice of a run")
        ax.set_title("per-run spread of each arm (bar: mean)", fontsize=9)
    fig.suptitle(f"Per-case Dice change, {reference} -> {arm} (mean over runs)", fontsize=10)
    fig.tight_layout()
    return fig


def pick_example_cases(change: pd.DataFrame, n: int = 3, subgroup: str = "test") -> list[str]:
    """``n`` cases of ``subgroup`` that show the range: most improved, most worsened, then the median ones."""
    rows = change[change["subgroup"] == subgroup].sort_values(["change", "case"])
    if rows.empty:
        return []
    order = [len(rows) - 1, 0] + list(np.argsort(np.abs(np.arange(len(rows)) - (len(rows) - 1) / 2), kind="stable"))
    picked = []
    for i in order:
        case = rows.iloc[int(i)]["case"]
        if case not in picked:
            picked.append(case)
        if len(picked) == n:
            break
    return picked


def prediction_examples_figure(examples: Sequence[Mapping], title: str = ""):
    """Test cases with the truth and each model's prediction on one axial slice.

    ``examples``: dicts with ``case``, ``image`` (HU, ``(z, y, x)``), ``truth`` (mask) and
    ``predictions`` (``model -> mask``), optionally ``dice`` (``model -> float``). One row per
    case: the image with the truth outlined, then one panel per model with its mask filled
    and the truth outlined. ``title`` goes above the legend line (say which runs are shown).
    """
    examples = list(examples)
    models = list(examples[0]["predictions"]) if examples else []
    fig, axes = plt.subplots(max(1, len(examples)), 1 + len(models), figsize=(2.8 * (1 + len(models)),
                             2.8 * max(1, len(examples))), squeeze=False)
    for row, example in zip(axes, examples):
        image, truth = np.asarray(example["image"]), np.asarray(example["truth"]) > 0
        z = nodule_slice(truth, *example["predictions"].values())
        _show(row[0], image[z], truth[z], None, None)
        row[0].set_title(f"{example['case']} (z={z})\ntruth", fontsize=9)
        for ax, model, color in zip(row[1:], models, MODEL_COLORS):
            mask = np.asarray(example["predictions"][model]) > 0
            _show(ax, image[z], truth[z], mask[z], color)
            dice = example.get("dice", {}).get(model)
            ax.set_title(model + ("" if dice is None else f"\nDice {dice:.3f}"), fontsize=9)
    fig.suptitle((f"{title}\n" if title else "") + "filled: prediction; outline: truth", fontsize=9)
    fig.tight_layout()
    return fig


def load_examples(cases: Sequence[str], images: Mapping[str, object], truths: Mapping[str, object],
                  predictions: Mapping[str, Mapping[str, object]],
                  dice: Mapping[str, Mapping[str, float]] | None = None) -> list[dict]:
    """Read the NIfTI files of ``cases`` into :func:`prediction_examples_figure`'s input.

    ``predictions``: ``model -> case -> prediction path`` (e.g. run 1 of each arm);
    ``dice``: ``model -> case -> Dice`` shown in the panel titles.
    """
    from .io import read_nifti

    examples = []
    for case in cases:
        examples.append({
            "case": case, "image": read_nifti(images[case])[0], "truth": read_nifti(truths[case])[0],
            "predictions": {model: read_nifti(paths[case])[0] for model, paths in predictions.items()},
            "dice": {model: float(values[case]) for model, values in (dice or {}).items() if case in values},
        })
    return examples


def _show(ax, image2d, truth2d, mask2d, color) -> None:
    ax.imshow(image2d, cmap="gray", vmin=WINDOW_HU[0], vmax=WINDOW_HU[1], interpolation="nearest")
    if mask2d is not None and mask2d.any():
        overlay = np.zeros((*mask2d.shape, 4))
        overlay[mask2d] = matplotlib.colors.to_rgba(color, 0.55)
        ax.imshow(overlay, interpolation="nearest")
    if truth2d.any():
        ax.contour(truth2d.astype(float), levels=[0.5], colors=["#ff006e"], linewidths=0.9)
    ax.set_axis_off()
