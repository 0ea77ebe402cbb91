import pandas as pd
import pytest

from lungsynth.errors import InputError
from lungsynth.pipeline.samplers import COMPARED, sampler_settings, summary_rows

SAMPLING = {"sampler": "ddim", "steps": 10, "eta": 0.0, "mode": "whole"}


@pytest.mark.parametrize("name, sampler, steps", [("ddim25", "ddim", 25), ("ddim1", "ddim", 1), ("ddpm", "ddpm", 10),
                                                 ("euler30", "euler", 30)])
def test_sampler_name_sets_sampler_and_steps_and_keeps_the_rest(name, sampler, steps):
    settings = sampler_settings(name, SAMPLING)
    assert (settings["sampler"], settings["steps"], settings["mode"]) == (sampler, steps, "whole")
    assert SAMPLING["steps"] == 10  # the config section itself is not changed


@pytest.mark.parametrize("name", ["ddim", "ddim0", "ddpm50", "DDIM10", "plms", "euler"])
def test_unknown_sampler_name_is_an_input_error_naming_the_key(name):
    with pytest.raises(InputError, match="sampler_comparison.samplers"):
        sampler_settings(name, SAMPLING)


def test_summary_gives_means_and_differences_relative_to_ddpm():
    rows = [{"sampler": s, "case": c, **{m: v for m in COMPARED}}
            for s, values in (("ddpm", (100.0, 200.0)), ("ddim10", (90.0, 170.0))) for c, v in zip("ab", values)]
    summary = summary_rows(pd.DataFrame(rows)).set_index(["sampler", "case"])
    assert summary.loc[("ddpm", "mean"), "contrast_hu"] == 150.0
    assert summary.loc[("ddim10", "mean"), "contrast_hu"] == 130.0
    assert summary.loc[("ddim10", "relative_to_ddpm"), "fidelity_dice"] == pytest.approx(-20 / 150)
    assert summary.loc[("ddpm", "relative_to_ddpm"), "wasserstein_lung_hu"] == 0.0


def test_summary_without_ddpm_has_only_means():
    rows = [{"sampler": "ddim10", "case": "a", **{m: 1.0 for m in COMPARED}}]
    assert list(summary_rows(pd.DataFrame(rows))["case"]) == ["mean"]
