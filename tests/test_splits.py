import pytest

from lungsynth.errors import InputError
from lungsynth.splits import split_cases, split_counts


def test_paper_proportions_reproduce_the_paper_counts():
    assert split_counts(833, (553, 142, 138)) == [553, 142, 138]


def test_every_set_gets_a_case_even_when_tiny():
    assert split_counts(3, (553, 142, 138)) == [1, 1, 1]
    assert sum(split_counts(17, (553, 142, 138))) == 17


def test_too_few_patients_is_a_clear_error():
    with pytest.raises(InputError, match="cannot fill"):
        split_counts(2, (1, 1, 1))


def test_split_keeps_a_patients_cases_together_and_is_seeded():
    cases = {f"c{i}": f"p{i // 2}" for i in range(40)}  # two cases per patient
    first = split_cases(cases, (553, 142, 138), seed=3)
    assert split_cases(cases, (553, 142, 138), seed=3) == first
    assert split_cases(cases, (553, 142, 138), seed=4) != first
    seen = {}
    for name, members in first.items():
        for case in members:
            seen.setdefault(cases[case], set()).add(name)
    assert all(len(sets) == 1 for sets in seen.values())
    assert sorted(sum(first.values(), [])) == sorted(cases)
