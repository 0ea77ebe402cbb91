# lungsynth: patch-wise 3D DDPM for lung CT conditioned on nodule masks, and its nnU-Net utility test.
# Run:  snakemake --profile profiles/default all          (the built-in phantom; not patient data)
#       snakemake --profile profiles/slurm all            (a SLURM cluster; see README)
from pathlib import Path

from snakemake.utils import min_version

min_version("9.0")


# defaults, found from any working directory (-d); overlays come with --configfile
configfile: Path(workflow.basedir) / "config" / "config.yaml"


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/ddpm.smk"
include: "workflow/rules/synth.smk"
include: "workflow/rules/nnunet.smk"
include: "workflow/rules/stats.smk"
include: "workflow/rules/samplers.smk"


rule all:
    input:
        ddpm_outputs,  # no checkpoint in these paths: the DDPM is scheduled beside the Real arm, not after it
        all_outputs,
    default_target: True
