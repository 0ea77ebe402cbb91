"""Which output of a trained nnU-Net run finds the nodules? Full resolution against the deep-supervision heads.

    .venv/bin/python bench/nnunet_heads.py --run runs/benchmark --settings bench1200-bf16 bench1200-val10-bf16 \
        --csv docs/benchmark/nnunet_heads.csv

Some Real runs of the schedule study predict no voxel on any crop while their training loss keeps
falling. For every run that ``bench/nnunet_schedule.py`` cached, this rebuilds the network with
its deep-supervision outputs (nnU-Net's decoder keeps one segmentation layer per stage), feeds it
one patch of the plan's size centred on each test nodule (nnU-Net's own preprocessing), and
records the highest foreground probability of each output: a run whose full-resolution output
stays near 0 while its lower-resolution outputs reach 1 has a dead full-resolution head, and the
loss, which sums all outputs, does not show it. One row per run: its test Dice and the mean over
test nodules of each output's highest foreground probability. (A run trained without deep
supervision has untrained lower outputs; there only the full-resolution one is judged.)
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchlib import ROOT, replace_row  # noqa: E402
from lungsynth.runtime import cpu_description  # noqa: E402


def network_with_heads(model_dir: Path):
    """The run's network with every deep-supervision output enabled, its final weights loaded, and
    the plans its input is preprocessed with: ``(network, plans, configuration, dataset_json)``."""
    import torch
    from nnunetv2.utilities.label_handling.label_handling import determine_num_input_channels
    from nnunetv2.utilities.plans_handling.plans_handler import PlansManager

    from lungsynth.nnunet.run import FOLD, trained_model_folder
    from lungsynth.nnunet.trainer import nnUNetTrainer_lungsynth

    folder = trained_model_folder(model_dir)
    checkpoint = torch.load(folder / f"fold_{FOLD}" / "checkpoint_final.pth", map_location="cpu", weights_only=False)
    plans = PlansManager(json.loads((folder / "plans.json").read_text()))
    dataset_json = json.loads((folder / "dataset.json").read_text())
    configuration = plans.get_configuration(checkpoint["init_args"]["configuration"])
    network = nnUNetTrainer_lungsynth.build_network_architecture(
        plans, configuration, determine_num_input_channels(plans, configuration, dataset_json),
        plans.get_label_manager(dataset_json).num_segmentation_heads, enable_deep_supervision=True)
    network.load_state_dict(checkpoint["network_weights"])
    return network.eval(), plans, configuration, dataset_json


def centred_patch(data: np.ndarray, centre, size) -> np.ndarray:
    """``data[:, patch]`` of ``size`` around ``centre`` (clipped to the volume, zero-padded if smaller)."""
    out = np.zeros((data.shape[0], *size), data.dtype)
    source, target = [], []
    for c, n, s in zip(centre, data.shape[1:], size):
        start = int(np.clip(round(c) - s // 2, 0, max(0, n - s)))
        stop = min(n, start + s)
        source.append(slice(start, stop))
        target.append(slice(0, stop - start))
    out[(slice(None), *target)] = data[(slice(None), *source)]
    return out


def nodule_patches(plans, configuration, dataset_json, images: dict, masks: dict) -> list[np.ndarray]:
    """One patch of the plan's size around each nodule, preprocessed as nnU-Net does for these plans."""
    preprocessor = configuration.preprocessor_class(verbose=False)
    patches = []
    for case in sorted(images):
        data, seg, _ = preprocessor.run_case([str(images[case])], str(masks[case]), plans, configuration,
                                             dataset_json)
        if (seg[0] > 0).any():
            patches.append(centred_patch(data, np.argwhere(seg[0] > 0).mean(0), configuration.patch_size))
    return patches


def head_maxima(network, patches: list[np.ndarray]) -> np.ndarray:
    """``(patches, outputs)``: the highest foreground probability of each output on each patch."""
    import torch

    rows = []
    for patch in patches:
        with torch.no_grad():
            outputs = network(torch.from_numpy(patch[None]).float())
        rows.append([float(torch.softmax(o.float(), 1)[0, 1].max()) for o in outputs])
    return np.asarray(rows)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--run", type=Path, required=True, help="workflow run folder holding results/data")
    p.add_argument("--settings", nargs="+", required=True, help="settings of bench/nnunet_schedule.py with cached runs")
    p.add_argument("--study", type=Path, default=ROOT / "bench" / "results" / "nnunet_schedule")
    p.add_argument("--csv", type=Path, default=ROOT / "docs" / "benchmark" / "nnunet_heads.csv")
    args = p.parse_args(argv)
    data = args.run / "results" / "data"
    test = json.loads((data / "splits.json").read_text())["test"]
    images = {c: data / "images" / f"{c}.nii.gz" for c in test}
    masks = {c: data / "masks" / f"{c}.nii.gz" for c in test}
    patches = {}   # preprocessed once per plan, not once per run
    for setting in args.settings:
        runs = sorted((args.study / setting).glob("seed*/model"))
        if not runs:
            raise SystemExit(f"{args.study / setting}: no trained runs (a --model-from setting has none of its own)")
        for model in runs:
            network, plans, configuration, dataset_json = network_with_heads(model)
            key = json.dumps(plans.plans, sort_keys=True, default=str)
            if key not in patches:
                patches[key] = nodule_patches(plans, configuration, dataset_json, images, masks)
            maxima = head_maxima(network, patches[key])
            result = json.loads((model.parent / "result.json").read_text())
            supervised = json.loads((model / "run.json").read_text())["train"].get("deep_supervision", True)
            row = {"setting": setting, "seed": result["seed"], "test_dice": round(result["test_dice"], 4),
                   "deep_supervision": supervised,
                   "nodules": len(maxima),
                   **{f"output{i}_max_fg": round(float(v), 3) for i, v in enumerate(maxima.mean(0))},
                   "cpu": cpu_description()}
            # trained without deep supervision, the lower outputs are untrained layers: only the top one counts
            lower = maxima.mean(0)[1:].max(initial=0) if supervised else 1.0
            row["dead_full_resolution_head"] = bool(maxima.mean(0)[0] < 0.5 <= lower)
            replace_row(args.csv, ["setting", "seed"], row)
            print(" ".join(f"{k}={v}" for k, v in row.items() if k != "cpu"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
