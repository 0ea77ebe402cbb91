from lungsynth.pipeline import nnunet
from lungsynth.scripting import job_device, run

p = snakemake.params
run(snakemake, lambda: nnunet.train(
    snakemake.wildcards.arm, int(snakemake.wildcards.run), snakemake.input[0], snakemake.output[0], p.plan, p.train,
    p.seed, snakemake.threads, checkpoint_every=snakemake.config["execution"]["nnunet_checkpoint_every"],
    device=job_device(snakemake)))
