"""The deep-supervision head check on a tiny schedule study: one row per cached run."""

from __future__ import annotations

import numpy as np
import pandas as pd

from tests.bench import load_bench, toy_run


def test_centred_patch_is_clipped_to_the_volume_and_padded_where_it_is_smaller():
    heads = load_bench("nnunet_heads")
    data = np.arange(2 * 4 * 10 * 10, dtype=np.float32).reshape(2, 4, 10, 10)
    patch = heads.centred_patch(data, (1.0, 9.0, 5.0), (6, 4, 4))
    assert patch.shape == (2, 6, 4, 4)
    np.testing.assert_array_equal(patch[:, :4], data[:, :, 6:10, 3:7])   # clipped at the far edge in y
    assert not patch[:, 4:].any()                                         # z padded with zeros


def test_every_cached_run_gets_the_highest_foreground_probability_of_each_output(tmp_path):
    run, overlay = toy_run(tmp_path / "toyrun", seed=4)
    out, csv = tmp_path / "study", tmp_path / "heads.csv"
    assert load_bench("nnunet_schedule").main(["--run", str(run), "--config", str(overlay), "--seeds", "1", "2",
                                              "--name", "toy", "--out", str(out), "--csv", str(tmp_path / "s.csv")]) == 0
    assert load_bench("nnunet_heads").main(["--run", str(run), "--settings", "toy", "--study", str(out),
                                           "--csv", str(csv)]) == 0
    table = pd.read_csv(csv)
    assert list(table["seed"]) == [1, 2] and (table["nodules"] == 1).all()
    outputs = [c for c in table if c.startswith("output")]
    assert len(outputs) == 2                           # features [4, 8, 16]: full resolution + one lower
    assert ((table[outputs] >= 0) & (table[outputs] <= 1)).all().all()
    assert table["dead_full_resolution_head"].dtype == bool
