"""Statistics of the utility experiment: the paper's Table 1 and what stands beside it.

The unit of Table 1 is the **run**: each arm is trained ``runs`` times on the same split, each
run's test Dice is the mean over the test cases, and an arm's row is the mean and standard
deviation (``ddof=1``) of its run means with Welch's two-sided t-test against Real's run
means. With the paper's own numbers (0.5418 +/- 0.03015 vs 0.4913 +/- 0.02733, n = 5 each)
Welch gives p = 0.024335, the value in its Table 1 (Student's pooled test would give 0.024112).

Beside it, per case: a paired test between arms on the per-case Dice averaged over runs
(Wilcoxon signed-rank, the cases being the same images) and bootstrap 95 % intervals over
cases.

The long Dice table every function here reads has one row per (arm, run, subset, case):
columns ``arm, run, subset, case, dice`` (subset: ``test`` or ``validation``).
"""

from __future__ import annotations

import logging
import math
from typing import Iterable, Sequence

import numpy as np
import pandas as pd
from scipy import stats

from .arms import LABELS, REFERENCE, arm as find_arm
from .errors import InputError

log = logging.getLogger(__name__)

LONG_COLUMNS = ["arm", "run", "subset", "case", "dice"]
#: the arms as the Dice records name them: the reference arm (:data:`lungsynth.arms.REFERENCE`) and
#: the arm trained on the targeted volumes
REFERENCE_LABEL = REFERENCE.label
TARGETED_LABEL = find_arm("RealSynthetic").label
SUBGROUPS = ("worst validation", "other validation", "test")


# ----------------------------------------------------------------------------- Welch


def welch_test(a: Sequence[float], b: Sequence[float]) -> tuple[float, float]:
    """Welch's two-sided t-test of two samples (run means); returns ``(t, p)``, NaN if undefined."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    if len(a) < 2 or len(b) < 2:
        return math.nan, math.nan
    result = stats.ttest_ind(a, b, equal_var=False)
    return float(result.statistic), float(result.pvalue)


def welch_test_from_summary(mean_a: float, sd_a: float, n_a: int,
                            mean_b: float, sd_b: float, n_b: int) -> tuple[float, float]:
    """Welch's two-sided t-test from ``mean, sd (ddof=1), n`` of each side; ``(t, p)``.

    What a reader of a paper can check: Table 1 gives only these three numbers per arm.
    """
    result = stats.ttest_ind_from_stats(mean_a, sd_a, n_a, mean_b, sd_b, n_b, equal_var=False)
    return float(result.statistic), float(result.pvalue)


# ----------------------------------------------------------------------------- tables


def long_dice_table(entries: Iterable[tuple[str, int, str, pd.DataFrame]]) -> pd.DataFrame:
    """Stack per-run Dice tables (``case, dice, ...``) into the long table, given ``(arm, run, subset, table)``."""
    frames = []
    for arm, run, subset, table in entries:
        if not {"case", "dice"} <= set(table.columns):
            raise InputError(f"{arm}/run{run}/{subset}", "Dice table needs columns case and dice")
        frames.append(with_record(table, arm, run, subset))
    return stack_dice_records(frames)


def with_record(table: pd.DataFrame, arm: str, run: int, subset: str) -> pd.DataFrame:
    """A Dice table with its record columns ``arm, run, subset`` in front (what a run's CSV holds)."""
    frame = table.drop(columns=[c for c in ("arm", "run", "subset") if c in table.columns])
    frame.insert(0, "subset", subset)
    frame.insert(0, "run", int(run))
    frame.insert(0, "arm", arm)
    return frame


def read_dice_records(paths) -> pd.DataFrame:
    """The long table from Dice CSVs that carry their own ``arm, run, subset`` (the runs' outputs)."""
    frames = []
    for path in paths:
        frame = pd.read_csv(path, dtype={"case": str, "arm": str, "subset": str})
        if not set(LONG_COLUMNS) <= set(frame.columns):
            raise InputError(path, f"Dice table needs columns {LONG_COLUMNS}")
        frames.append(frame)
    return stack_dice_records(frames)


def stack_dice_records(frames) -> pd.DataFrame:
    """Concatenate Dice records; a case twice in one (arm, run, subset) is an InputError."""
    frames = list(frames)
    if not frames:
        return pd.DataFrame(columns=LONG_COLUMNS)
    long = pd.concat(frames, ignore_index=True)
    duplicated = long.duplicated(["arm", "run", "subset", "case"])
    if duplicated.any():
        raise InputError("dice tables", f"duplicate rows, e.g. {long[duplicated].iloc[0][LONG_COLUMNS[:4]].tolist()}")
    return long


def run_means(long: pd.DataFrame, subset: str = "test") -> pd.DataFrame:
    """Mean Dice over the cases of ``subset`` for every run: columns ``arm, run, cases, mean_dice``."""
    rows = long[long["subset"] == subset]
    return (rows.groupby(["arm", "run"], sort=True)["dice"].agg(cases="count", mean_dice="mean")
            .reset_index())


def table1(long: pd.DataFrame, arms: Sequence[str] | None = None, reference: str = REFERENCE_LABEL,
           subset: str = "test") -> pd.DataFrame:
    """The paper's Table 1: ``arm, runs, mean_test_dice, sd_test_dice, p_value`` (p NaN for Real).

    Mean and sample standard deviation (``ddof=1``) of the run means; p from Welch's test of
    the arm's run means against ``reference``'s.
    """
    means = run_means(long, subset)
    if arms is None:
        arms = [a for a in LABELS if a in set(means["arm"])]
        arms += sorted(set(means["arm"]) - set(arms))
    reference_means = means.loc[means["arm"] == reference, "mean_dice"].to_numpy()
    rows = []
    for arm in arms:
        values = means.loc[means["arm"] == arm, "mean_dice"].to_numpy()
        if len(values) == 0:
            raise InputError(arm, f"no {subset} Dice for this arm")
        p = math.nan if arm == reference else welch_test(values, reference_means)[1]
        rows.append({"arm": arm, "runs": len(values), "mean_test_dice": float(values.mean()),
                     "sd_test_dice": float(values.std(ddof=1)) if len(values) > 1 else math.nan, "p_value": p})
    return pd.DataFrame(rows, columns=["arm", "runs", "mean_test_dice", "sd_test_dice", "p_value"])


def format_table1(table: pd.DataFrame) -> pd.DataFrame:
    """Table 1 ready to print or write: Dice to 4 decimals, p to 6 (empty for the reference)."""
    out = table.copy()
    for column in ("mean_test_dice", "sd_test_dice"):
        out[column] = out[column].map(lambda v: "" if pd.isna(v) else f"{v:.4f}")
    out["p_value"] = out["p_value"].map(lambda v: "" if pd.isna(v) else f"{v:.6f}")
    return out


def case_means(long: pd.DataFrame, subset: str) -> pd.DataFrame:
    """Per-case Dice averaged over each arm's runs: index ``case``, one column per arm."""
    rows = long[long["subset"] == subset]
    return rows.pivot_table(index="case", columns="arm", values="dice", aggfunc="mean").sort_index()


def paired_case_tests(long: pd.DataFrame, subset: str = "test", reference: str = REFERENCE_LABEL) -> pd.DataFrame:
    """Each arm against ``reference`` on the same cases (Dice averaged over runs).

    Columns: ``arm, reference, subset, cases, mean_difference, median_difference, improved,
    worse, unchanged, wilcoxon_statistic, wilcoxon_p``. Wilcoxon's signed-rank test
    (two-sided, zero differences dropped as in Wilcoxon's original); p is NaN when every
    difference is zero.
    """
    means = case_means(long, subset)
    rows = []
    if reference not in means.columns:
        return pd.DataFrame(rows)
    for arm in means.columns:
        if arm == reference:
            continue
        pair = means[[arm, reference]].dropna()
        diff = (pair[arm] - pair[reference]).to_numpy()
        statistic, p = math.nan, math.nan
        if np.any(diff != 0):
            result = stats.wilcoxon(diff, zero_method="wilcox", alternative="two-sided")
            statistic, p = float(result.statistic), float(result.pvalue)
        rows.append({"arm": arm, "reference": reference, "subset": subset, "cases": len(diff),
                     "mean_difference": float(diff.mean()) if len(diff) else math.nan,
                     "median_difference": float(np.median(diff)) if len(diff) else math.nan,
                     "improved": int(np.sum(diff > 0)), "worse": int(np.sum(diff < 0)),
                     "unchanged": int(np.sum(diff == 0)), "wilcoxon_statistic": statistic, "wilcoxon_p": p})
    return pd.DataFrame(rows)


def bootstrap_ci(values: Sequence[float], confidence: float = 0.95, resamples: int = 9999,
                 seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean of ``values`` (cases resampled with replacement)."""
    values = np.asarray(values, float)
    values = values[~np.isnan(values)]
    if len(values) < 2 or np.all(values == values[0]):
        m = float(values.mean()) if len(values) else math.nan
        return m, m
    result = stats.bootstrap((values,), np.mean, n_resamples=resamples, confidence_level=confidence,
                             method="percentile", rng=np.random.default_rng(seed))
    return float(result.confidence_interval.low), float(result.confidence_interval.high)


def bootstrap_table(long: pd.DataFrame, subset: str = "test", reference: str = REFERENCE_LABEL,
                    confidence: float = 0.95, resamples: int = 9999, seed: int = 0) -> pd.DataFrame:
    """Bootstrap intervals over cases: each arm's mean Dice, and each arm's paired difference to ``reference``.

    Columns: ``arm, quantity, subset, cases, estimate, ci_low, ci_high`` (quantity: ``mean_dice``
    or ``difference_to_<reference>``); per-case Dice averaged over runs first.
    """
    means = case_means(long, subset)
    rows = []
    for arm in means.columns:
        values = means[arm].dropna().to_numpy()
        low, high = bootstrap_ci(values, confidence, resamples, seed)
        rows.append({"arm": arm, "quantity": "mean_dice", "subset": subset, "cases": len(values),
                     "estimate": float(values.mean()), "ci_low": low, "ci_high": high})
        if arm != reference and reference in means.columns:
            pair = means[[arm, reference]].dropna()
            diff = (pair[arm] - pair[reference]).to_numpy()
            low, high = bootstrap_ci(diff, confidence, resamples, seed)
            rows.append({"arm": arm, "quantity": f"difference_to_{reference}", "subset": subset,
                         "cases": len(diff), "estimate": float(diff.mean()), "ci_low": low, "ci_high": high})
    return pd.DataFrame(rows)


# ----------------------------------------------------------------------------- power


def minimum_detectable_difference(sd: float, n: int, alpha: float = 0.05, power: float = 0.8,
                                  paired: bool = False) -> float:
    """The smallest true difference of means a two-sided t-test finds with probability ``power``.

    Unpaired (Table 1: runs of two arms, ``n`` each, common ``sd``): statsmodels'
    ``TTestIndPower`` solves for the effect size d; the difference is ``d * sd``. Paired (the same
    ``n`` cases under two arms, ``sd`` of the per-case differences): ``TTestPower``. NaN when it
    cannot be solved (n < 2, sd NaN). (Welch's test has the same power as Student's for equal n
    and equal variances, the assumption of this calculation.)
    """
    from statsmodels.stats.power import TTestIndPower, TTestPower

    if not (n >= 2 and np.isfinite(sd)):
        return math.nan
    if paired:
        effect = TTestPower().solve_power(effect_size=None, nobs=n, alpha=alpha, power=power, alternative="two-sided")
    else:
        effect = TTestIndPower().solve_power(effect_size=None, nobs1=n, alpha=alpha, power=power, ratio=1.0,
                                             alternative="two-sided")
    return float(effect) * float(sd)


def power_table(long: pd.DataFrame, reference: str = REFERENCE_LABEL, alpha: float = 0.05,
                power: float = 0.8) -> pd.DataFrame:
    """What Table 1 and the per-case analysis can see: for each arm against ``reference``, the
    observed difference and the minimum detectable difference (``alpha``, ``power``) of Welch's test
    on the run means (pooled sd of the two arms' runs) and of the paired t-test on the test cases
    (Dice averaged over runs; sd of the per-case differences)."""
    means = run_means(long, "test")
    cases = case_means(long, "test")
    ref = means.loc[means["arm"] == reference, "mean_dice"].to_numpy(float)
    rows = []
    for arm in [a for a in LABELS if a in set(means["arm"]) and a != reference]:
        values = means.loc[means["arm"] == arm, "mean_dice"].to_numpy(float)
        n = min(len(values), len(ref))
        pooled = math.sqrt((np.var(values, ddof=1) + np.var(ref, ddof=1)) / 2) if n >= 2 else math.nan
        diff = (cases[arm] - cases[reference]).dropna().to_numpy(float) if arm in cases else np.zeros(0)
        sd_diff = float(np.std(diff, ddof=1)) if len(diff) >= 2 else math.nan
        rows.append({
            "arm": arm, "reference": reference, "alpha": alpha, "power": power,
            "runs": n, "sd_runs_arm": float(np.std(values, ddof=1)) if len(values) > 1 else math.nan,
            "sd_runs_reference": float(np.std(ref, ddof=1)) if len(ref) > 1 else math.nan,
            "observed_difference": float(values.mean() - ref.mean()),
            "welch_mdd": minimum_detectable_difference(pooled, n, alpha, power),
            "cases": len(diff), "sd_case_differences": sd_diff,
            "observed_case_difference": float(diff.mean()) if len(diff) else math.nan,
            "paired_mdd": minimum_detectable_difference(sd_diff, len(diff), alpha, power, paired=True),
        })
    return pd.DataFrame(rows)


# ----------------------------------------------------------------------------- targeted data


def worst_validation_cases(long: pd.DataFrame, arm: str = REFERENCE_LABEL, subset: str = "validation") -> pd.DataFrame:
    """Validation cases whose Dice, averaged over ``arm``'s runs, lies below the mean of those averages.

    The paper's rule (it found 59 of 142). Columns ``case, mean_dice, runs, threshold``,
    worst first. Cases exactly at the mean are not worst, unless every case is: when all cases tie
    (Real runs that found no nodule anywhere, as in a short demo) the rule leaves nothing to target,
    so every case counts as worst, with a warning.
    """
    rows = long[(long["arm"] == arm) & (long["subset"] == subset)]
    if rows.empty:
        raise InputError(f"{arm}/{subset}", "no Dice rows: the Real runs must predict the validation set")
    per_case = rows.groupby("case")["dice"].agg(mean_dice="mean", runs="count").reset_index()
    threshold = float(per_case["mean_dice"].mean())
    below = per_case["mean_dice"] < threshold
    if not below.any():
        log.warning("all %d %s cases have the same mean Dice %.4f over the %s runs: none lies below the "
                    "mean, so every case counts as worst", len(per_case), subset, threshold, arm)
        below[:] = True
    worst = per_case[below].copy()
    worst["threshold"] = threshold
    return worst.sort_values(["mean_dice", "case"]).reset_index(drop=True)


def dice_change(long: pd.DataFrame, worst_cases: Iterable[str], arm: str = TARGETED_LABEL,
                reference: str = REFERENCE_LABEL) -> pd.DataFrame:
    """Per-case Dice change ``arm - reference`` (each averaged over runs) in the paper's three subgroups.

    Columns ``case, subgroup, reference_dice, arm_dice, change``; subgroup is one of
    ``worst validation``, ``other validation``, ``test`` (the paper's Figure 3).
    """
    worst = set(worst_cases)
    frames = []
    for subset in ("validation", "test"):
        means = case_means(long, subset)
        if arm not in means.columns or reference not in means.columns:
            continue
        frame = means[[reference, arm]].dropna().reset_index()
        frame.columns = ["case", "reference_dice", "arm_dice"]
        if subset == "test":
            frame.insert(1, "subgroup", "test")
        else:
            frame.insert(1, "subgroup", np.where(frame["case"].isin(worst), "worst validation", "other validation"))
        frames.append(frame)
    if not frames:
        return pd.DataFrame(columns=["case", "subgroup", "reference_dice", "arm_dice", "change"])
    out = pd.concat(frames, ignore_index=True)
    out["change"] = out["arm_dice"] - out["reference_dice"]
    return out


# ----------------------------------------------------------------------------- files


def write_table1(path, table: pd.DataFrame) -> None:
    """``table1.csv``: floats to 6 significant digits, the reference's p-value empty."""
    from .io import write_csv

    write_csv(path, table, float_format="%.6g", na_rep="")


def write_stats(folder, long: pd.DataFrame, reference: str = REFERENCE_LABEL) -> dict:
    """The statistics beside Table 1, one CSV each, in ``folder``; returns ``name -> path``.

    ``per_case_dice.csv`` (the long table), ``run_means.csv`` (test and validation),
    ``case_means_<subset>.csv`` (per case, Dice averaged over each arm's runs),
    ``paired_tests.csv`` (Wilcoxon per arm against the reference, per subset) and ``power.csv``
    (the minimum detectable differences at the measured spread, :func:`power_table`). The bootstrap
    intervals are :func:`write_bootstrap`'s (their own rule: they alone depend on ``stats:``).
    """
    from pathlib import Path

    from .io import write_csv

    folder = Path(folder)
    subsets = present_subsets(long)
    written = {}

    def put(name, frame, **kwargs):
        write_csv(folder / name, frame, **kwargs)
        written[name] = folder / name

    put("per_case_dice.csv", long)
    put("run_means.csv", pd.concat([run_means(long, s).assign(subset=s) for s in subsets], ignore_index=True))
    for subset in subsets:
        put(f"case_means_{subset}.csv", case_means(long, subset).reset_index(), float_format="%.6g")
    put("paired_tests.csv", pd.concat([paired_case_tests(long, s, reference) for s in subsets], ignore_index=True))
    if "test" in subsets:
        put("power.csv", power_table(long, reference), float_format="%.6g")
    return written


def write_bootstrap(path, long: pd.DataFrame, resamples: int, seed: int, reference: str = REFERENCE_LABEL) -> None:
    """``bootstrap.csv``: 95 % intervals over cases (:func:`bootstrap_table`) for every subset."""
    from .io import write_csv

    write_csv(path, pd.concat([bootstrap_table(long, s, reference, resamples=resamples, seed=seed)
                               for s in present_subsets(long)], ignore_index=True))


def present_subsets(long: pd.DataFrame) -> list[str]:
    return [s for s in ("test", "validation") if s in set(long["subset"])]
