"""The `nifti` data source: your own CT images and lesion masks (lungsynth.nifti.source)."""
