"""The whole DAG on the tiny config: from nothing to results/table1.csv, then partial reruns.

One Snakemake run per session (a few minutes); the tests below inspect what it made.
"""

from __future__ import annotations

import json
import shutil

import nibabel as nib
import numpy as np
import pandas as pd
import pydicom
import pytest
import SimpleITK as sitk

pytestmark = pytest.mark.workflow


@pytest.fixture(scope="session")
def dag(tmp_path_factory, nodule_table_build):
    from tests.workflow.conftest import snakemake

    workdir = tmp_path_factory.mktemp("dag")
    (workdir / "results/lidc").mkdir(parents=True)
    shutil.copy(nodule_table_build(), workdir / "results/lidc/nodules.csv")   # the same rule's output
    result = snakemake(workdir, "all")
    assert result.returncode == 0, result.stdout[-5000:] + result.stderr[-5000:]
    return workdir


def test_table1_has_the_three_arms_with_dice_and_p_values(dag):
    table = pd.read_csv(dag / "results/table1.csv")
    assert list(table.arm) == ["Real", "Synthetic", "Real+Synthetic"]
    assert (table.runs == 2).all()
    assert table.mean_test_dice.between(0, 1).all() and (table.sd_test_dice >= 0).all()
    assert np.isnan(table.p_value[0])
    assert table.p_value[1:].between(0, 1, inclusive="right").all()


def test_every_crop_reads_the_same_in_simpleitk_and_nibabel(dag):
    crops = sorted((dag / "results/data").glob("*/*.nii.gz")) + sorted((dag / "results/synthetic").rglob("*.nii.gz"))
    assert len(crops) >= 16
    for path in crops:
        image = sitk.ReadImage(str(path))
        nifti = nib.load(path)
        assert np.allclose(nifti.header.get_zooms(), image.GetSpacing(), atol=1e-4), path
        assert np.allclose(nifti.affine[:3, 3], np.array(image.GetOrigin()) * [-1, -1, 1], atol=1e-3), path


def test_synthetic_volume_shares_the_affine_of_its_conditioning_mask(dag):
    for image in (dag / "results/synthetic/general").glob("*.nii.gz"):
        mask = image.parent / "masks" / image.name
        a, b = sitk.ReadImage(str(image)), sitk.ReadImage(str(mask))
        assert a.GetSize() == b.GetSize() and np.allclose(a.GetOrigin(), b.GetOrigin())
        assert sitk.GetArrayFromImage(a).dtype == np.int16


def test_split_is_by_patient_and_covers_every_case(dag):
    split = json.loads((dag / "results/data/splits.json").read_text())
    cases = pd.read_csv(dag / "results/data/cases.csv", dtype=str)
    assert [len(split[s]) for s in ("train", "validation", "test")] == [5, 2, 1]
    assert sorted(sum((split[s] for s in ("train", "validation", "test")), [])) == sorted(cases.case)
    patient = dict(zip(cases.case, cases.patient_id))
    sets = [{patient[c] for c in split[s]} for s in ("train", "validation", "test")]
    assert not (sets[0] & sets[1] or sets[0] & sets[2] or sets[1] & sets[2])


def test_general_set_has_one_volume_per_training_mask_and_targeted_follows_the_worst_list(dag):
    split = json.loads((dag / "results/data/splits.json").read_text())
    general = sorted(p.name for p in (dag / "results/synthetic/general").glob("*.nii.gz"))
    assert general == sorted(f"{c}.nii.gz" for c in split["train"])
    worst = pd.read_csv(dag / "results/targeted/worst_validation.csv", dtype={"case": str})
    assert len(worst) == 1 and worst.case[0] in split["validation"]
    assert (worst.mean_dice < worst.threshold).all()
    targeted = sorted(p.name for p in (dag / "results/synthetic/targeted").glob("*.nii.gz"))
    assert targeted == [f"{worst.case[0]}_v1.nii.gz"]
    quality = pd.read_csv(dag / "results/synthetic/targeted/quality.csv")
    assert list(quality.case) == [f"{worst.case[0]}_v1", "summary"]


def test_real_synthetic_dataset_holds_real_training_and_targeted_cases(dag):
    raw = next((dag / "results/nnunet/RealSynthetic/raw").glob("Dataset503_*"))
    split = json.loads((raw / "splits_final.json").read_text())[0]
    assert sum(c.startswith("tgt-") for c in split["train"]) == 1
    assert len(split["train"]) == 6 and len(split["val"]) == 2


def test_phantom_dicom_says_it_is_not_patient_data(dag):
    first = next((dag / "results/phantom/dicom").rglob("*.dcm"))
    dataset = pydicom.dcmread(first)
    assert "NOT_PATIENT_DATA" in str(dataset.PatientName)
    assert "NOT PATIENT DATA" in dataset.SeriesDescription


def test_nothing_to_do_after_a_complete_run(dag, run_snakemake):
    result = run_snakemake(dag, "-n", "all")
    assert result.returncode == 0
    assert "Nothing to be done" in result.stdout + result.stderr


def scheduled_jobs(output: str) -> dict:
    """``rule -> count`` from the "Job stats" table of a dry run (without ``all``); {} if nothing to do."""
    if "Job stats:" not in output:
        assert "Nothing to be done" in output, output[-3000:]
        return {}
    jobs = {}
    for line in output[output.index("Job stats:"):].splitlines()[3:]:
        parts = line.split()
        if len(parts) != 2 or not parts[1].isdigit():
            break
        if parts[0] not in ("all", "total"):
            jobs[parts[0]] = int(parts[1])
    return jobs


ARMS_RETRAINED = {"utility_stats": 1, "bootstrap_intervals": 1, "figure3": 1, "prediction_examples": 1}

# one key changed at a time -> exactly the jobs that must run again (tiny config: 5 training, 2 validation,
# 1 test case, 2 runs per arm, 1 worst validation case, 1 targeted volume per mask)
RERUN_SCOPE = [
    ("execution:\n  nnunet_tile_batch: 8\n", {}),                          # a prediction speed knob
    ("execution:\n  ddpm_checkpoint_every: 3\n", {}),                      # a training speed knob
    ("report:\n  figure2_cases: 2\n", {"figure2": 2}),                      # the figures only
    ("report:\n  montage_cases: 1\n", {"data_montage": 1}),
    ("stats:\n  bootstrap_resamples: 300\n", {"bootstrap_intervals": 1}),
    ("quality:\n  shell_mm: 4.0\n", {"synthetic_quality": 2}),
    ("nnunet:\n  runs: 3\n", {"nnunet_train": 3, "nnunet_predict": 3, **ARMS_RETRAINED}),
    # the new variant joins the first's sampling batch: the batch is sampled again and both are linked
    ("targeted:\n  per_mask: 2\n", {"sample": 1, "synthetic_volume": 2, "synthetic_quality": 1, "figure2": 1, "synthetic_fidelity": 1,
                                     "nnunet_raw_dataset": 1, "nnunet_plan": 1, "nnunet_train": 2,
                                     "nnunet_predict": 2, **ARMS_RETRAINED}),
    ("ddpm:\n  network:\n    channels: [8, 16, 24]\n",                 # the model: everything synthetic
     {"train_ddpm": 1, "sample": 3, "synthetic_volume": 6, "synthetic_quality": 2, "figure2": 2, "synthetic_fidelity": 2,
      "nnunet_raw_dataset": 2, "nnunet_plan": 2, "nnunet_train": 4, "nnunet_predict": 4, **ARMS_RETRAINED}),
]


@pytest.mark.parametrize("overlay, expected", RERUN_SCOPE, ids=[o.split(":")[0] + "." + o.split()[1].rstrip(":")
                                                                for o, _ in RERUN_SCOPE])
def test_a_changed_key_reruns_only_what_depends_on_it(dag, run_snakemake, tmp_path, overlay, expected):
    from tests.workflow.conftest import TEST_CONFIG

    change = tmp_path / "change.yaml"
    change.write_text(overlay)
    result = run_snakemake(dag, "-n", "all", configfiles=[TEST_CONFIG, change])
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert scheduled_jobs(result.stdout + result.stderr) == expected


def test_the_ddpm_runs_beside_the_real_arm_not_after_it(dag, run_snakemake, tmp_path):
    """With the crops made and no network trained, the first DAG of ``all`` holds the DDPM and the
    general set: they need not wait for the worst-validation checkpoint of the Real runs."""
    partial = tmp_path / "partial"
    shutil.copytree(dag, partial, symlinks=True)
    for later in ("nnunet", "ddpm", "synthetic", "stats", "figures", "targeted", "table1.csv"):
        path = partial / "results" / later
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink(missing_ok=True)
    result = run_snakemake(partial, "-n", "all")
    jobs = scheduled_jobs(result.stdout + result.stderr)
    assert jobs.get("train_ddpm") == 1 and jobs.get("sample", 0) >= 1, jobs
    assert jobs.get("nnunet_train") == 2 and "utility_stats" not in jobs, jobs   # the Real runs; the rest waits


def test_one_run_rebuilds_alone_and_reproduces_its_dice(dag, run_snakemake):
    target = dag / "results/nnunet/Real/run2/test_dice.csv"
    before = pd.read_csv(target)
    shutil.rmtree(dag / "results/nnunet/Real/run2")
    dry = run_snakemake(dag, "-n", "results/nnunet/Real/run2/test_dice.csv")
    jobs = dry.stdout[dry.stdout.index("Job stats"):]
    assert "nnunet_train" in jobs and "nnunet_predict" in jobs
    assert not any(rule in jobs for rule in ("nnunet_plan", "train_ddpm", "sample", "preprocess_case"))
    result = run_snakemake(dag, "results/nnunet/Real/run2/test_dice.csv")
    assert result.returncode == 0, result.stdout[-3000:]
    pd.testing.assert_frame_equal(pd.read_csv(target), before)   # same seed, same threads: same Dice


def test_fidelity_relates_synthetic_dice_to_the_real_test_dice_of_the_real_run(dag):
    for name in ("general", "targeted"):
        table = pd.read_csv(dag / f"results/synthetic/{name}/fidelity.csv", dtype={"case": str})
        volumes = sorted(p.name.removesuffix(".nii.gz") for p in (dag / f"results/synthetic/{name}").glob("*.nii.gz"))
        assert sorted(table.case[:-1]) == volumes and (table.run[:-1] == "1").all()
        assert table.dice.between(0, 1).all()
        real = pd.read_csv(dag / "results/nnunet/Real/run1/test_dice.csv")["dice"].mean()
        assert table.real_test_dice.iloc[-1] == pytest.approx(real)


def test_sampler_comparison_scores_the_same_masks_by_every_sampler(dag, run_snakemake):
    result = run_snakemake(dag, "results/samplers/comparison.csv")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    table = pd.read_csv(dag / "results/samplers/comparison.csv", dtype={"case": str})
    case = json.loads((dag / "results/data/splits.json").read_text())["validation"][0]
    per_volume = table[~table.case.isin(["mean", "relative_to_ddpm"])]
    assert sorted(per_volume.sampler) == ["ddim2", "ddpm"] and set(per_volume.case) == {case}
    relative = table[table.case == "relative_to_ddpm"].set_index("sampler")
    assert (relative.loc["ddpm", ["contrast_hu", "mean_hu_lung"]] == 0).all()
    assert (dag / "results/samplers/comparison.png").stat().st_size > 10_000
    ddpm, ddim = (read_volume(dag / f"results/samplers/{s}/{case}.nii.gz") for s in ("ddpm", "ddim2"))
    assert ddpm.shape == ddim.shape and not np.array_equal(ddpm, ddim)


def read_volume(path):
    return sitk.GetArrayFromImage(sitk.ReadImage(str(path)))
