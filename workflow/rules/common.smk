# Helpers and input functions shared by the rules. The other .smk files hold rules only.
import json
from pathlib import Path

import pandas as pd
from lungsynth.pipeline.ddpm import source_case
from lungsynth.pipeline.samplers import sampler_settings
from snakemake.exceptions import WorkflowError
from snakemake.utils import validate


def validate_config():
    """Check the merged config against the schema; name the config file(s) and every bad key."""
    try:
        validate(config, "../schemas/config.schema.yaml")
    except WorkflowError:
        import jsonschema
        import yaml

        schema = yaml.safe_load(open(Path(workflow.basedir) / "workflow" / "schemas" / "config.schema.yaml"))
        problems = [
            f"  {'.'.join(map(str, error.absolute_path)) or '(top level)'}: {error.message}"
            for error in jsonschema.Draft202012Validator(schema).iter_errors(config)
        ]
        files = ", ".join(str(f) for f in workflow.configfiles)
        raise WorkflowError(f"invalid configuration in {files}:\n" + "\n".join(problems)) from None


validate_config()

SOURCE = config["data"]["source"]


# arms as folder-safe tokens; lungsynth.pipeline.nnunet.ARM_LABELS gives the paper's names
ARMS = ["Real", "Synthetic", "RealSynthetic"]


wildcard_constraints:
    case=r"[^/]+",
    set=r"general|targeted",
    sampler=r"ddpm|ddim[1-9][0-9]*",
    arm="|".join(ARMS),
    run=r"\d+",


def selected_cases():
    """The case table written by the `select_cases` checkpoint (a DataFrame)."""
    return pd.read_csv(checkpoints.select_cases.get().output[0], dtype=str)


def all_cases():
    return sorted(selected_cases()["case"])


def case_split():
    """train / validation / test case ids: the same function the `split` rule writes."""
    from lungsynth.splits import split_cases

    cases = selected_cases()
    return split_cases(dict(zip(cases["case"], cases["patient_id"])), config["split"]["proportions"],
                       config["split"]["seed"])


def split_paths(name, kind):
    """Crops (``kind`` images|masks) of the cases in split ``name`` (train|validation|test)."""
    return expand(f"results/data/{kind}/{{case}}.nii.gz", case=case_split()[name])


def synthetic_cases(name):
    """Synthetic case ids of set ``name``: general = the training cases; targeted = per_mask
    variants <case>_v<k> of the worst validation cases (known after the Real nnU-Net runs)."""
    if name == "general":
        return case_split()["train"]
    worst = pd.read_csv(checkpoints.worst_validation.get().output[0], dtype={"case": str})
    return [f"{case}_v{k}" for case in worst["case"] for k in range(1, config["sampling"]["per_mask"] + 1)]


def synthetic_paths(name, kind):
    """Synthetic volumes (``kind`` images) or their conditioning masks (``kind`` masks) of a set."""
    folder = f"results/synthetic/{name}/masks" if kind == "masks" else f"results/synthetic/{name}"
    return expand(f"{folder}/{{case}}.nii.gz", case=synthetic_cases(name))


def run_files(arm, name):
    """``results/nnunet/<arm>/run<k>/<name>`` for every run k of an arm."""
    return [f"results/nnunet/{arm}/run{k}/{name}" for k in range(1, config["nnunet"]["runs"] + 1)]


def generation_settings():
    """The `sampling:` section without `quality` and `per_mask`: what one generated volume depends
    on (so changing a quality metric or the size of the targeted set regenerates nothing)."""
    return {key: value for key, value in config["sampling"].items() if key not in ("quality", "per_mask")}


def fidelity_files(name):
    """``name`` (model | test_dice.csv) of the Real runs that score mask fidelity."""
    return run_files("Real", name)[: config["sampling"]["quality"]["fidelity_runs"]]


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


def arm_inputs(wildcards):
    """The crops an arm's nnU-Net dataset is built from (Real | Synthetic | RealSynthetic)."""
    inputs = {"validation_images": split_paths("validation", "images"),
              "validation_masks": split_paths("validation", "masks")}
    if wildcards.arm in ("Real", "RealSynthetic"):
        inputs.update(train_images=split_paths("train", "images"), train_masks=split_paths("train", "masks"))
    if wildcards.arm == "Synthetic":
        inputs.update(general_images=synthetic_paths("general", "images"),
                      general_masks=synthetic_paths("general", "masks"))
    if wildcards.arm == "RealSynthetic":
        inputs.update(targeted_images=synthetic_paths("targeted", "images"),
                      targeted_masks=synthetic_paths("targeted", "masks"))
    return inputs


def select_cases_input(wildcards):
    return [] if SOURCE == "nifti" else ["results/lidc/nodules.csv"]


def preprocess_input(wildcards):
    """The source of one case: its phantom series, or the user's NIfTI pair (LIDC lives outside)."""
    inputs = {"selection": checkpoints.select_cases.get().output[0]}
    if SOURCE == "phantom":
        inputs["dicom"] = f"results/phantom/dicom/{wildcards.case}"
    elif SOURCE == "nifti":
        row = selected_cases().set_index("case").loc[wildcards.case]
        inputs["image"], inputs["mask"] = row["image"], row["mask"]
    return inputs


def dicom_root():
    return "results/phantom/dicom" if SOURCE == "phantom" else config["data"]["lidc_root"]


def data_outputs(wildcards):
    cases = all_cases()
    return (
        expand("results/data/images/{case}.nii.gz", case=cases)
        + expand("results/data/masks/{case}.nii.gz", case=cases)
        + ["results/data/cases.csv", "results/data/splits.json", "results/data/montage.png"]
        + select_cases_input(wildcards)
    )


def ddpm_outputs(wildcards):
    return ["results/ddpm/model.pt", "results/ddpm/loss.png"] + [
        f"results/synthetic/general/{name}" for name in ("quality.csv", "figure2.png")
    ]


def utility_outputs(wildcards):
    return ["results/table1.csv", "results/figures/figure3.png", "results/figures/predictions.png"] + [
        f"results/synthetic/targeted/{name}" for name in ("quality.csv", "figure2.png")
    ] + [f"results/synthetic/{set}/fidelity.csv" for set in ("general", "targeted")]


def all_outputs(wildcards):
    return data_outputs(wildcards) + ddpm_outputs(wildcards) + utility_outputs(wildcards)
