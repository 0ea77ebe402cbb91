"""How much of a nodule's volume the crop grid keeps: spheres of 3-30 mm at random sub-voxel positions
in a 1 x 0.7 x 0.7 mm source, resampled to the demo's (5 x 3 x 3 mm) and config/lidc.yaml's
(2.5 x 1.25 x 1.25 mm) grids, by the mask rule in use (per-component partial volume) and by the
former one (partial volume >= 0.5): docs/benchmark/mask_volume.csv.

    .venv/bin/python bench/mask_volume.py --csv docs/benchmark/mask_volume.csv
    .venv/bin/python bench/mask_volume.py --quick
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

GRIDS = {"demo 5x3x3": (5.0, 3.0, 3.0), "lidc 2.5x1.25x1.25": (2.5, 1.25, 1.25)}


def main() -> None:
    import numpy as np
    import pandas as pd

    from lungsynth.preprocess.grid import sphere_volume_kept

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="two sizes, two positions")
    parser.add_argument("--trials", type=int, default=20, help="random positions per size (default 20)")
    parser.add_argument("--csv", type=Path, default=None)
    args = parser.parse_args()
    diameters, trials = ((3, 10), 2) if args.quick else ((3, 4, 5, 6, 8, 10, 15, 20, 30), args.trials)
    rows = []
    for grid_name, grid in GRIDS.items():
        for diameter in diameters:
            for rule, threshold in (("partial volume", None), ("threshold 0.5", 0.5)):
                rng = np.random.default_rng(diameter)      # the same positions for both rules
                kept = [after / before for before, after in
                        (sphere_volume_kept(diameter, grid, rng, threshold=threshold) for _ in range(trials))]
                rows.append({"grid_mm": grid_name, "diameter_mm": diameter, "rule": rule, "trials": trials,
                             "kept_mean": round(float(np.mean(kept)), 3), "kept_min": round(min(kept), 3),
                             "kept_max": round(max(kept), 3), "lost": int(sum(k == 0 for k in kept))})
    table = pd.DataFrame(rows)
    print(table.to_string(index=False))
    if args.csv:
        table.to_csv(args.csv, index=False)


if __name__ == "__main__":
    main()
