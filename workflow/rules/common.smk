# Helpers and input functions shared by the rules. The other .smk files hold rules only.
import json
from pathlib import Path

import pandas as pd
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


wildcard_constraints:
    case=r"[^/]+",


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


def all_outputs(wildcards):
    return data_outputs(wildcards)
