# lungsynth: patch-wise 3D DDPM for lung CT conditioned on nodule masks, and its nnU-Net utility test.
# Run:  snakemake --profile profiles/default all          (the built-in phantom; not patient data)
#       snakemake --profile profiles/slurm all            (a SLURM cluster; see README)
from snakemake.utils import min_version

min_version("9.0")


configfile: "config/config.yaml"


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"


rule all:
    input:
        all_outputs,
    default_target: True
