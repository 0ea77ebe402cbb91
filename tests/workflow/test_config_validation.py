import pytest

pytestmark = pytest.mark.workflow


def test_unknown_config_key_names_the_file_and_the_key(tmp_path, run_snakemake):
    bad = tmp_path / "bad.yaml"
    bad.write_text("preprocess:\n  volume_sise: [64, 64, 64]\n")
    result = run_snakemake(tmp_path, "-n", configfiles=[bad])
    assert result.returncode != 0
    out = result.stdout + result.stderr
    assert "invalid configuration" in out and "bad.yaml" in out
    assert "preprocess: Additional properties are not allowed ('volume_sise' was unexpected)" in out


def test_wrong_type_in_config_is_reported(tmp_path, run_snakemake):
    bad = tmp_path / "bad.yaml"
    bad.write_text("preprocess:\n  volume_size: [64, 64, 50]\n")   # not divisible by 16
    result = run_snakemake(tmp_path, "-n", configfiles=[bad])
    out = result.stdout + result.stderr
    assert result.returncode != 0 and "invalid configuration" in out
    assert "preprocess.volume_size.2: 50 is not a multiple of 16" in out


def test_unknown_data_source_is_reported(tmp_path, run_snakemake):
    bad = tmp_path / "bad.yaml"
    bad.write_text("data:\n  source: dicomweb\n")
    result = run_snakemake(tmp_path, "-n", configfiles=[bad])
    assert result.returncode != 0 and "data.source: 'dicomweb' is not one of" in result.stdout + result.stderr
