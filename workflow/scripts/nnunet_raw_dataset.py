from lungsynth.pipeline import nnunet
from lungsynth.scripting import run

i = snakemake.input


def pair(prefix):
    return (i.get(f"{prefix}_images"), i.get(f"{prefix}_masks")) if f"{prefix}_images" in i.keys() else None


run(snakemake, lambda: nnunet.raw_dataset(
    snakemake.wildcards.arm, pair("train") or ([], []), pair("general"), pair("targeted"), pair("validation"),
    snakemake.output[0], snakemake.params.settings))
