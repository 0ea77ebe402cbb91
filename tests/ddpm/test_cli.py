import subprocess
import sys

import numpy as np
import pytest

from lungsynth.cli import main
from lungsynth.io import Geometry, read_nifti, write_nifti

from .toys import toy_volumes

GEOMETRY = Geometry(spacing=(2.0, 2.0, 2.0), origin=(-120.5, 33.0, -410.0),
                    direction=(0.0, 1.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0, -1.0))


def test_cli_help_works_as_a_command():
    for args in (["--help"], ["sample", "--help"]):
        done = subprocess.run([sys.executable, "-m", "lungsynth.cli", *args], capture_output=True, text=True,
                              timeout=120)
        assert done.returncode == 0 and "usage: lungsynth" in done.stdout
    assert "--checkpoint" in done.stdout and "--steps" in done.stdout


def test_cli_sample_writes_nifti_with_the_mask_affine(tiny_checkpoint, tmp_path):
    mask = toy_volumes(1)[1][0]
    write_nifti(tmp_path / "m.nii.gz", mask, GEOMETRY)
    out = tmp_path / "out" / "synth.nii.gz"
    code = main(["sample", "--checkpoint", str(tiny_checkpoint), "--mask", str(tmp_path / "m.nii.gz"),
                 "--out", str(out), "--steps", "3", "--no-bf16", "--threads", "1", "--quiet"])
    assert code == 0
    hu, geometry = read_nifti(out)
    assert hu.shape == mask.shape and hu.dtype == np.int16
    assert geometry.matches(GEOMETRY)


def test_cli_input_error_is_one_line_and_exit_code_2(tiny_checkpoint, tmp_path, capsys):
    write_nifti(tmp_path / "big.nii.gz", np.zeros((16, 16, 32), np.uint8), GEOMETRY)
    code = main(["sample", "--checkpoint", str(tiny_checkpoint), "--mask", str(tmp_path / "big.nii.gz"),
                 "--out", str(tmp_path / "s.nii.gz"), "--quiet"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1
    assert err[0].startswith("lungsynth: error: ") and "big.nii.gz" in err[0] and "trained on volumes" in err[0]
    assert not (tmp_path / "s.nii.gz").exists()


def test_cli_refuses_fewer_steps_for_ddpm(tiny_checkpoint, tmp_path, capsys):
    write_nifti(tmp_path / "m.nii.gz", toy_volumes(1)[1][0], GEOMETRY)
    code = main(["sample", "--checkpoint", str(tiny_checkpoint), "--mask", str(tmp_path / "m.nii.gz"),
                 "--out", str(tmp_path / "s.nii.gz"), "--sampler", "ddpm", "--steps", "50", "--quiet"])
    assert code == 2 and "--steps" in capsys.readouterr().err


def test_cli_without_command_is_a_usage_error():
    with pytest.raises(SystemExit) as exit_:
        main([])
    assert exit_.value.code == 2


def test_cli_refuses_to_overwrite_the_mask(tiny_checkpoint, tmp_path, capsys):
    write_nifti(tmp_path / "m.nii.gz", toy_volumes(1)[1][0], GEOMETRY)
    code = main(["sample", "--checkpoint", str(tiny_checkpoint), "--mask", str(tmp_path / "m.nii.gz"),
                 "--out", str(tmp_path / "m.nii.gz"), "--quiet"])
    assert code == 2 and "overwrite the mask" in capsys.readouterr().err


def test_case_id_is_the_mask_file_name_without_extension():
    from lungsynth.ddpm.sample import case_id_of

    assert case_id_of("results/data/masks/LIDC-IDRI-0078.nii.gz") == "LIDC-IDRI-0078"
    assert case_id_of("m.nii") == "m" and case_id_of("x.mha") == "x"
