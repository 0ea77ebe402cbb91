import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps

from lungsynth.errors import InputError
from lungsynth.stats import (LONG_COLUMNS, bootstrap_ci, bootstrap_table, dice_change, format_table1, long_dice_table,
                             read_dice_records, with_record, write_bootstrap,
                             paired_case_tests, run_means, table1, welch_test, welch_test_from_summary,
                             worst_validation_cases, write_stats, write_table1)


def test_paper_real_plus_synthetic_vs_real_gives_its_p_value():
    """Table 1 of the paper: 0.5418 +/- 0.03015 vs 0.4913 +/- 0.02733, n = 5 each -> p = 0.024335."""
    _, p = welch_test_from_summary(0.5418, 0.03015, 5, 0.4913, 0.02733, 5)
    assert float(f"{p:.4g}") == 0.02434
    assert p == pytest.approx(0.024335, abs=5e-7)


def welch_by_hand(m1, s1, n1, m2, s2, n2):
    """Welch's t and Welch-Satterthwaite degrees of freedom, written out."""
    v1, v2 = s1**2 / n1, s2**2 / n2
    t = (m1 - m2) / math.sqrt(v1 + v2)
    df = (v1 + v2) ** 2 / (v1**2 / (n1 - 1) + v2**2 / (n2 - 1))
    return t, 2 * sps.t.sf(abs(t), df)


def test_paper_synthetic_vs_real_matches_welchs_formula():
    t, p = welch_test_from_summary(0.5016, 0.0206, 5, 0.4913, 0.02733, 5)
    t_hand, p_hand = welch_by_hand(0.5016, 0.0206, 5, 0.4913, 0.02733, 5)
    assert t == pytest.approx(t_hand, rel=1e-12) and p == pytest.approx(p_hand, rel=1e-12)
    assert p == pytest.approx(0.521331, abs=5e-7)  # not significant, as the paper says


def test_welch_from_raw_run_means_equals_welch_from_their_summary():
    a = [0.52, 0.55, 0.50, 0.58, 0.56]
    b = [0.49, 0.47, 0.52, 0.46, 0.51]
    t, p = welch_test(a, b)
    t2, p2 = welch_test_from_summary(np.mean(a), np.std(a, ddof=1), 5, np.mean(b), np.std(b, ddof=1), 5)
    assert (t, p) == pytest.approx((t2, p2), rel=1e-10)
    assert p != pytest.approx(sps.ttest_ind(a, b, equal_var=True).pvalue, rel=1e-6)  # not Student's
    assert math.isnan(welch_test([0.5], b)[1])


def make_long(run_values: dict, cases=("c1", "c2", "c3", "c4"), subset="test") -> pd.DataFrame:
    """Long table whose run mean is exactly the given value (each case = value + offset summing to 0)."""
    offsets = np.linspace(-0.1, 0.1, len(cases))
    entries = []
    for arm, values in run_values.items():
        for run, value in enumerate(values, start=1):
            entries.append((arm, run, subset, pd.DataFrame({"case": list(cases), "dice": value + offsets})))
    return long_dice_table(entries)


def test_table1_has_one_row_per_arm_with_run_mean_sd_and_welch_p():
    real = [0.4913 + d for d in (-0.03, -0.01, 0.0, 0.01, 0.03)]
    synthetic = [0.50, 0.51, 0.52, 0.48, 0.49]
    both = [0.54, 0.57, 0.51, 0.55, 0.53]
    long = make_long({"Real+Synthetic": both, "Real": real, "Synthetic": synthetic})
    table = table1(long)
    assert list(table["arm"]) == ["Real", "Synthetic", "Real+Synthetic"]
    assert list(table["runs"]) == [5, 5, 5]
    row = table.set_index("arm").loc["Real+Synthetic"]
    assert row["mean_test_dice"] == pytest.approx(np.mean(both))
    assert row["sd_test_dice"] == pytest.approx(np.std(both, ddof=1))
    assert row["p_value"] == pytest.approx(sps.ttest_ind(both, real, equal_var=False).pvalue)
    assert math.isnan(table.set_index("arm").loc["Real", "p_value"])
    printed = format_table1(table)
    assert printed.loc[0, "p_value"] == "" and printed.loc[2, "mean_test_dice"] == f"{np.mean(both):.4f}"


def test_table1_csv_leaves_reals_p_value_empty(tmp_path):
    long = make_long({"Real": [0.4, 0.5], "Synthetic": [0.45, 0.55]})
    write_table1(tmp_path / "table1.csv", table1(long))
    lines = (tmp_path / "table1.csv").read_text().splitlines()
    assert lines[0] == "arm,runs,mean_test_dice,sd_test_dice,p_value"
    assert lines[1].endswith(",") and lines[1].startswith("Real,2,")
    back = pd.read_csv(tmp_path / "table1.csv")
    assert 0 < back.loc[1, "p_value"] <= 1


def test_run_means_average_over_cases_of_one_subset():
    long = pd.concat([make_long({"Real": [0.3, 0.5]}), make_long({"Real": [0.9, 0.9]}, subset="validation")])
    means = run_means(long, "test")
    assert means["mean_dice"].tolist() == pytest.approx([0.3, 0.5]) and means["cases"].tolist() == [4, 4]


def test_long_table_rejects_duplicate_rows():
    frame = pd.DataFrame({"case": ["a"], "dice": [0.5]})
    with pytest.raises(InputError, match="duplicate"):
        long_dice_table([("Real", 1, "test", frame), ("Real", 1, "test", frame)])


def validation_long(per_case: dict, runs=2) -> pd.DataFrame:
    entries = []
    for run in range(1, runs + 1):
        dice = [v + (run - 1.5) * 0.01 for v in per_case.values()]
        entries.append(("Real", run, "validation", pd.DataFrame({"case": list(per_case), "dice": dice})))
    return long_dice_table(entries)


def test_worst_validation_cases_lie_below_the_mean_of_real_runs():
    long = validation_long({"a": 0.9, "b": 0.1, "c": 0.6, "d": 0.4, "e": 0.5})  # mean 0.5
    worst = worst_validation_cases(long)
    assert worst["case"].tolist() == ["b", "d"]  # worst first; "e" at the mean is not worst
    assert worst["threshold"].iloc[0] == pytest.approx(0.5)
    assert worst["mean_dice"].tolist() == pytest.approx([0.1, 0.4])
    assert worst["runs"].tolist() == [2, 2]


def test_when_every_validation_case_ties_every_case_is_worst(caplog):
    long = validation_long({"a": 0.0, "b": 0.0, "c": 0.0}).assign(dice=0.0)   # runs that found nothing
    worst = worst_validation_cases(long)
    assert sorted(worst["case"]) == ["a", "b", "c"] and (worst["threshold"] == 0.0).all()
    assert "same mean Dice" in caplog.text


def test_worst_validation_cases_need_real_validation_rows():
    with pytest.raises(InputError, match="validation"):
        worst_validation_cases(make_long({"Real": [0.5]}))


def test_paired_case_test_counts_and_wilcoxon():
    cases = [f"c{i}" for i in range(10)]
    real = np.linspace(0.2, 0.8, 10)
    better = real + np.r_[0.05, 0.04, 0.06, 0.03, 0.02, 0.07, 0.01, 0.05, 0.0, -0.01]
    long = long_dice_table([("Real", 1, "test", pd.DataFrame({"case": cases, "dice": real})),
                            ("Real+Synthetic", 1, "test", pd.DataFrame({"case": cases, "dice": better}))])
    row = paired_case_tests(long).iloc[0]
    assert (row["improved"], row["worse"], row["unchanged"], row["cases"]) == (8, 1, 1, 10)
    expected = sps.wilcoxon((better - real)[(better - real) != 0])
    assert row["wilcoxon_p"] == pytest.approx(expected.pvalue) and row["wilcoxon_p"] < 0.05


def test_paired_case_test_with_no_change_has_no_p_value():
    long = make_long({"Real": [0.5], "Synthetic": [0.5]})
    assert math.isnan(paired_case_tests(long).iloc[0]["wilcoxon_p"])


def test_bootstrap_interval_covers_the_mean_and_repeats_with_its_seed():
    values = np.random.default_rng(1).uniform(0, 1, 40)
    low, high = bootstrap_ci(values, seed=3)
    assert low < values.mean() < high and (low, high) == bootstrap_ci(values, seed=3)
    assert bootstrap_ci([0.5, 0.5, 0.5]) == (0.5, 0.5)
    table = bootstrap_table(make_long({"Real": [0.4, 0.5], "Synthetic": [0.6, 0.7]}))
    assert set(table["quantity"]) == {"mean_dice", "difference_to_Real"}
    assert (table["ci_low"] <= table["estimate"]).all() and (table["estimate"] <= table["ci_high"]).all()


def test_dice_change_sorts_cases_into_the_three_subgroups():
    val = validation_long({"a": 0.2, "b": 0.8}, runs=1)
    both = pd.DataFrame({"case": ["a", "b"], "dice": [0.5, 0.7]})
    val2 = long_dice_table([("Real+Synthetic", 1, "validation", both)])
    test = make_long({"Real": [0.5], "Real+Synthetic": [0.6]}, cases=("t1", "t2"))
    change = dice_change(pd.concat([val, val2, test], ignore_index=True), worst_cases=["a"]).set_index("case")
    assert change.loc["a", "subgroup"] == "worst validation" and change.loc["b", "subgroup"] == "other validation"
    assert change.loc["t1", "subgroup"] == "test"
    assert change.loc["a", "change"] == pytest.approx(0.5 - (0.2 - 0.005))
    assert change.loc["t2", "change"] == pytest.approx(0.1)


def test_write_stats_writes_every_table(tmp_path):
    long = pd.concat([make_long({"Real": [0.4, 0.5], "Real+Synthetic": [0.5, 0.6]}),
                      make_long({"Real": [0.4, 0.5], "Real+Synthetic": [0.5, 0.6]}, subset="validation")])
    written = write_stats(tmp_path / "stats", long)
    assert sorted(written) == ["case_means_test.csv", "case_means_validation.csv",
                               "paired_tests.csv", "per_case_dice.csv", "power.csv", "run_means.csv"]
    assert len(pd.read_csv(written["per_case_dice.csv"])) == len(long)
    assert set(pd.read_csv(written["paired_tests.csv"])["subset"]) == {"test", "validation"}
    write_bootstrap(tmp_path / "stats" / "bootstrap.csv", long, resamples=200, seed=1)
    bootstrap = pd.read_csv(tmp_path / "stats" / "bootstrap.csv")
    assert set(bootstrap["subset"]) == {"test", "validation"} and set(bootstrap["arm"]) == {"Real", "Real+Synthetic"}


def test_dice_records_carry_their_run_and_read_back_as_the_long_table(tmp_path):
    long = make_long({"Real": [0.4, 0.5]})
    paths = []
    for run, rows in long.groupby("run"):
        paths.append(tmp_path / f"run{run}.csv")
        with_record(rows[["case", "dice"]], "Real", run, "test").to_csv(paths[-1], index=False)
    back = read_dice_records(paths)
    pd.testing.assert_frame_equal(back[LONG_COLUMNS], long[LONG_COLUMNS].reset_index(drop=True), check_dtype=False)
    with pytest.raises(InputError, match="duplicate"):
        read_dice_records([paths[0], paths[0]])


def test_minimum_detectable_difference_matches_statsmodels_own_power_solver():
    from statsmodels.stats.power import TTestIndPower, TTestPower

    from lungsynth.stats import minimum_detectable_difference

    # the worked example of the issue: n = 5 runs per arm, alpha 0.05, power 0.8: about 2 sd
    mdd = minimum_detectable_difference(0.134, 5)
    assert 0.26 < mdd < 0.28
    assert minimum_detectable_difference(0.03, 5) == pytest.approx(0.0606, abs=0.001)
    # and the difference found has the asked power, by statsmodels' forward calculation
    assert TTestIndPower().power(effect_size=mdd / 0.134, nobs1=5, alpha=0.05, ratio=1.0) == pytest.approx(0.8, abs=1e-6)
    paired = minimum_detectable_difference(0.1, 11, paired=True)
    assert TTestPower().power(effect_size=paired / 0.1, nobs=11, alpha=0.05) == pytest.approx(0.8, abs=1e-6)
    assert math.isnan(minimum_detectable_difference(0.1, 1))


def test_power_table_relates_the_observed_difference_to_what_the_runs_can_show():
    from lungsynth.stats import power_table

    long = make_long({"Real": [0.40, 0.45, 0.50], "Real+Synthetic": [0.52, 0.55, 0.58]})
    row = power_table(long).set_index("arm").loc["Real+Synthetic"]
    assert row["observed_difference"] == pytest.approx(0.10)
    assert row["runs"] == 3 and row["welch_mdd"] > row["sd_runs_reference"]
    assert row["cases"] == 4 and row["observed_case_difference"] == pytest.approx(0.10)
