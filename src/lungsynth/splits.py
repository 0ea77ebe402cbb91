"""Patient-level split into train / validation / test in the paper's proportions (553/142/138)."""

from __future__ import annotations

import numpy as np

from .errors import InputError

SETS = ("train", "validation", "test")


def split_counts(n: int, proportions) -> list[int]:
    """Largest-remainder rounding of ``n`` into the proportions, with at least one per set."""
    if n < len(SETS):
        raise InputError("split", f"{n} patient(s) cannot fill train, validation and test")
    weights = np.asarray(proportions, float) / float(np.sum(proportions))
    exact = weights * n
    counts = np.floor(exact).astype(int)
    for i in np.argsort(-(exact - counts))[: n - counts.sum()]:
        counts[i] += 1
    for i in range(len(counts)):             # tiny n: borrow from the largest set
        if counts[i] == 0:
            counts[np.argmax(counts)] -= 1
            counts[i] = 1
    return counts.tolist()


def split_cases(case_patients: dict[str, str], proportions, seed: int) -> dict[str, list[str]]:
    """``{"train": [...], "validation": [...], "test": [...]}`` of case ids; a patient's cases stay together."""
    patients = sorted(set(case_patients.values()))
    order = np.random.default_rng(seed).permutation(len(patients))
    counts = split_counts(len(patients), proportions)
    bounds = np.cumsum([0] + counts)
    split = {}
    for name, start, stop in zip(SETS, bounds[:-1], bounds[1:]):
        members = {patients[i] for i in order[start:stop]}
        split[name] = sorted(c for c, p in case_patients.items() if p in members)
    return split
