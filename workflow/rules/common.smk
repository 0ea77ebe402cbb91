# Helpers and input functions shared by the rules. The other .smk files hold rules only.
#
# Params carry only what an output depends on, so that a changed key reruns only what it
# touches (the narrowest config sections a job reads). The execution section (checkpoint
# intervals, batch sizes of inference) is never a param; scripts read it from the config.
import functools
import json
from pathlib import Path

import pandas as pd
from lungsynth import arms
from lungsynth.case_ids import SYNTHETIC_SETS, source_case, synthetic_ids
from lungsynth.config import problems
from lungsynth.errors import InputError
from lungsynth.nnunet.settings import run_seed
from lungsynth.phantom import patient_root
from lungsynth.pipeline.samplers import sampler_settings
from lungsynth.resources import Counts, rule_request, snakemake_resources
from lungsynth.settings import WorkflowSettings
from snakemake.exceptions import WorkflowError
from snakemake.utils import validate


def validate_config():
    """Check the merged config against the schema and fill its defaults; name the config file(s)
    and every bad key. Then the checks that span sections (lungsynth.settings.WorkflowSettings)."""
    files = ", ".join(str(f) for f in workflow.configfiles)
    try:
        validate(config, "../schemas/config.schema.yaml", set_default=True)
    except WorkflowError:
        raise WorkflowError(f"invalid configuration in {files}:\n  " + "\n  ".join(problems(config))) from None
    try:
        WorkflowSettings.from_config(config)
    except InputError as err:
        raise WorkflowError(f"invalid configuration in {files}:\n  {err}") from None


validate_config()

SOURCE = config["data"]["source"]
ARMS = arms.TOKENS
PHANTOM_ROOT = "results/phantom/dicom"
# where the phantom's patient folders go in its layout (phantom.layout): results/phantom/dicom/<patient>
# or, NBIA-style, results/phantom/dicom/manifest-<n>/LIDC-IDRI/<patient>
PHANTOM_PATIENTS = patient_root(PHANTOM_ROOT, config["phantom"]["layout"]).as_posix()
PHANTOM_MANIFEST = Path(PHANTOM_PATIENTS).parent.as_posix()


wildcard_constraints:
    case=r"[^/]+",
    set="|".join(SYNTHETIC_SETS),
    sampler=r"ddpm|ddim[1-9][0-9]*",
    arm="|".join(ARMS),
    run=r"[1-9][0-9]*",
    batch=r"[0-9]+",


# ----------------------------------------------------------------------------- resources


def case_counts():
    """The case counts the rules' resources follow: the split's and the worst validation cases'
    once those files exist, the config's estimate before (as `lungsynth estimate` computes it).
    Read again only when one of the two files changes (every job's resources ask for them)."""
    files = (Path("results/data/splits.json"), Path("results/targeted/worst_validation.csv"))
    return counts_of(tuple(f.stat().st_mtime_ns if f.exists() else None for f in files))


@functools.lru_cache(maxsize=8)
def counts_of(stamps):
    split, worst = Path("results/data/splits.json"), Path("results/targeted/worst_validation.csv")
    if stamps[0] is None:
        return Counts.from_config(config)
    n_worst = len(pd.read_csv(worst)) if stamps[1] is not None else None
    return Counts.from_split(json.loads(split.read_text()), n_worst, config)


def threads_of(rule):
    """A rule's threads (lungsynth.resources; they follow the config, not the case counts)."""
    return rule_request(rule, config, Counts.from_config(config)).threads


def resources_of(rule):
    """A rule's mem_mb, runtime (growing with the attempt) and gpu (lungsynth.resources)."""
    return snakemake_resources(rule, config, case_counts)


# ----------------------------------------------------------------------------- cases and splits


def selected_cases():
    """The case table written by the `select_cases` checkpoint (a DataFrame)."""
    return pd.read_csv(checkpoints.select_cases.get().output[0], dtype=str)


def all_cases():
    return sorted(selected_cases()["case"])


def case_split():
    """train / validation / test case ids, as the `split` checkpoint wrote them."""
    return json.loads(Path(checkpoints.split.get().output[0]).read_text())


def split_paths(name, kind):
    """Crops (``kind`` images|masks) of the cases in split ``name`` (train|validation|test)."""
    return expand(f"results/data/{kind}/{{case}}.nii.gz", case=case_split()[name])


def synthetic_cases(name):
    """Synthetic case ids of set ``name``: general = the training cases; targeted = per_mask
    variants of the worst validation cases (known after the Real nnU-Net runs)."""
    if name == "general":
        return synthetic_ids("general", case_split()["train"])
    worst = pd.read_csv(checkpoints.worst_validation.get().output[0], dtype={"case": str})["case"]
    return synthetic_ids("targeted", worst, config["targeted"]["per_mask"])


def synthetic_paths(name, kind):
    """Synthetic volumes (``kind`` images) or their conditioning masks (``kind`` masks) of a set."""
    folder = f"results/synthetic/{name}/masks" if kind == "masks" else f"results/synthetic/{name}"
    return expand(f"{folder}/{{case}}.nii.gz", case=synthetic_cases(name))


def sampling_batches(name):
    """The synthetic cases of set ``name`` in id order, cut into batches of `execution.sampling_batch`."""
    cases, size = sorted(synthetic_cases(name)), config["execution"]["sampling_batch"]
    return [cases[start : start + size] for start in range(0, len(cases), size)]


def sampling_batch_cases(wildcards):
    batches = sampling_batches(wildcards.set)
    if int(wildcards.batch) >= len(batches):
        raise WorkflowError(f"the {wildcards.set} set has {len(batches)} sampling batches, not batch {wildcards.batch}")
    return batches[int(wildcards.batch)]


def sampling_batch_masks(wildcards):
    """The conditioning masks of one sampling batch, in the order of its cases."""
    return [f"results/data/masks/{source_case(wildcards.set, case)}.nii.gz" for case in sampling_batch_cases(wildcards)]


def sampling_batch_of_case(wildcards):
    """The batch folder that holds a synthetic case's volume."""
    for number, batch in enumerate(sampling_batches(wildcards.set)):
        if wildcards.case in batch:
            return f"results/synthetic/{wildcards.set}/batches/{number}"
    raise WorkflowError(f"{wildcards.case} is not a case of the {wildcards.set} synthetic set")


def figure2_inputs(wildcards):
    """The first `report.figure2_cases` volumes of a set, their masks and the real crops of the same masks."""
    cases = synthetic_cases(wildcards.set)[: config["report"]["figure2_cases"]]
    return {
        "images": expand(f"results/synthetic/{wildcards.set}/{{case}}.nii.gz", case=cases),
        "masks": expand(f"results/synthetic/{wildcards.set}/masks/{{case}}.nii.gz", case=cases),
        "real": [f"results/data/images/{source_case(wildcards.set, c)}.nii.gz" for c in cases],
    }


# ----------------------------------------------------------------------------- data sources


def select_cases_input(wildcards):
    return [] if SOURCE == "nifti" else ["results/lidc/nodules.csv"]


def nodule_criteria():
    """The two `preprocess` keys that decide which reader clusters are nodules (the selection's)."""
    return {key: config["preprocess"][key] for key in ("min_nodule_mm", "min_readers")}


def preprocess_input(wildcards):
    """The source of one case: its phantom series, or the user's NIfTI pair (LIDC lives outside)."""
    inputs = {"selection": checkpoints.select_cases.get().output[0]}
    if SOURCE == "phantom":
        inputs["dicom"] = f"{PHANTOM_PATIENTS}/{wildcards.case}"
    elif SOURCE == "nifti":
        row = selected_cases().set_index("case").loc[wildcards.case]
        inputs["image"], inputs["mask"] = row["image"], row["mask"]
    return inputs


def dicom_root():
    return PHANTOM_ROOT if SOURCE == "phantom" else config["data"]["lidc_root"]


def phantom_outputs():
    """The NBIA layouts' metadata.csv at the manifest root (nothing for the UID layout)."""
    return [f"{PHANTOM_MANIFEST}/metadata.csv"] if SOURCE == "phantom" and config["phantom"]["layout"] != "uid" else []


# ----------------------------------------------------------------------------- nnU-Net arms and runs


def run_files(arm, name, runs=None):
    """``results/nnunet/<arm>/run<k>/<name>`` for the first ``runs`` runs of an arm (default: all)."""
    runs = config["nnunet"]["runs"] if runs is None else runs
    return [f"results/nnunet/{arm}/run{k}/{name}" for k in range(1, runs + 1)]


def selection_files(name):
    """``name`` of the Real runs whose validation Dice picks the worst cases (`targeted.selection_runs`)."""
    return run_files(arms.REFERENCE.token, name, config["targeted"]["selection_runs"])


def fidelity_files(name):
    """``name`` (model | test_dice.csv) of the Real runs that score mask fidelity (`quality.fidelity_runs`)."""
    return run_files(arms.REFERENCE.token, name, config["quality"]["fidelity_runs"])


def all_dice_files(wildcards):
    return [f for arm in ARMS for name in ("validation_dice.csv", "test_dice.csv") for f in run_files(arm, name)]


def arm_inputs(wildcards):
    """The crops an arm's nnU-Net dataset is built from: its training sets and the real validation cases."""
    inputs = {"validation_images": split_paths("validation", "images"),
              "validation_masks": split_paths("validation", "masks")}
    for name in arms.arm(wildcards.arm).training_sets:
        if name == "real":
            inputs["real_images"], inputs["real_masks"] = split_paths("train", "images"), split_paths("train", "masks")
        else:
            inputs[f"{name}_images"], inputs[f"{name}_masks"] = synthetic_paths(name, "images"), synthetic_paths(name, "masks")
    return inputs


def ddpm_model_of_arm(wildcards):
    """The DDPM of an arm with synthetic data, as an input of its own: arm_inputs cannot name the
    volumes before the worst-validation checkpoint, and without this the DDPM would wait for it."""
    return ["results/ddpm/model.pt"] if set(arms.arm(wildcards.arm).training_sets) - {"real"} else []


def dataset_name(wildcards):
    """nnU-Net's DatasetXXX_Name of an arm."""
    return arms.arm(wildcards.arm).dataset_name(config["nnunet"]["datasets"][wildcards.arm])


def seed_of_run(wildcards):
    return run_seed(config["nnunet"]["seed"], int(wildcards.run))


def sampler_comparison_inputs(wildcards):
    """The first `sampler_comparison.cases` validation cases by every compared sampler."""
    cases = case_split()["validation"][: config["sampler_comparison"]["cases"]]
    inputs = {f"volumes_{name}": expand(f"results/samplers/{name}/{{case}}.nii.gz", case=cases)
              for name in config["sampler_comparison"]["samplers"]}
    return inputs | {
        "masks": expand("results/data/masks/{case}.nii.gz", case=cases),
        "real": expand("results/data/images/{case}.nii.gz", case=cases),
        "reference": split_paths("train", "images"),
        "models": fidelity_files("model"),
    }


# ----------------------------------------------------------------------------- targets of `all`


def data_outputs(wildcards):
    cases = all_cases()
    return (
        expand("results/data/images/{case}.nii.gz", case=cases)
        + expand("results/data/masks/{case}.nii.gz", case=cases)
        + ["results/data/cases.csv", "results/data/splits.json", "results/data/montage.png"]
        + select_cases_input(wildcards)
        + phantom_outputs()
    )


def ddpm_outputs(wildcards):
    return ["results/ddpm/model.pt", "results/ddpm/loss.png"] + [
        f"results/synthetic/general/{name}" for name in ("quality.csv", "figure2.png")
    ]


def utility_outputs(wildcards):
    return ["results/table1.csv", "results/stats/bootstrap.csv", "results/figures/figure3.png",
            "results/figures/predictions.png"] + [
        f"results/synthetic/targeted/{name}" for name in ("quality.csv", "figure2.png")
    ] + [f"results/synthetic/{set}/fidelity.csv" for set in SYNTHETIC_SETS]


def all_outputs(wildcards):
    """Every target. It lists the synthetic volumes too, so that its own input function reads every
    checkpoint (selection, split, worst validation cases) before any job below them is created:
    Snakemake 9.27 does not check params and code of jobs first created while a checkpoint they
    read was pending (`snakemake -n all` missed changed params of the DDPM and nnU-Net rules)."""
    return (data_outputs(wildcards) + synthetic_paths("general", "images") + synthetic_paths("targeted", "images")
            + ddpm_outputs(wildcards) + utility_outputs(wildcards))
