from lungsynth.pipeline import data
from lungsynth.scripting import run

run(snakemake, lambda: data.preprocess(
    snakemake.wildcards.case, snakemake.params.source, snakemake.params.settings,
    snakemake.output.image, snakemake.output.mask, snakemake.output.record,
    selection_csv=snakemake.input.selection, dicom_root=snakemake.params.dicom_root,
    image=snakemake.input.get("image"), mask=snakemake.input.get("mask")))
