import pytest
import torch

from lungsynth.ddpm.checkpoint import load_model
from lungsynth.errors import InputError


def test_checkpoint_round_trips_to_the_same_network(tiny_checkpoint):
    loaded = load_model(tiny_checkpoint)
    assert loaded.volume_size == (16, 16, 16) and loaded.patch_size == (8, 8, 8)
    assert loaded.spacing == (2.0, 2.0, 2.0) and loaded.step == 5 and len(loaded.data_hash) == 64
    assert not loaded.model.training
    ema = torch.load(tiny_checkpoint, weights_only=True)["ema_state_dict"]
    assert all(torch.equal(ema[k], v) for k, v in loaded.model.state_dict().items())


def test_truncated_checkpoint_is_an_input_error_naming_the_file(tiny_checkpoint, tmp_path):
    broken = tmp_path / "model.pt"
    broken.write_bytes(tiny_checkpoint.read_bytes()[:5000])
    with pytest.raises(InputError, match="not a readable DDPM checkpoint") as err:
        load_model(broken)
    assert err.value.where == str(broken)


def test_foreign_file_is_not_taken_for_a_checkpoint(tmp_path):
    foreign = tmp_path / "other.pt"
    torch.save({"state_dict": {"w": torch.zeros(2)}}, foreign)
    with pytest.raises(InputError, match="not a lungsynth DDPM checkpoint"):
        load_model(foreign)
    text = tmp_path / "notes.pt"
    text.write_text("hello")
    with pytest.raises(InputError, match="not a readable"):
        load_model(text)
    with pytest.raises(InputError, match="not found"):
        load_model(tmp_path / "missing.pt")


def test_training_state_passed_as_model_says_so(tiny_checkpoint):
    with pytest.raises(InputError, match="training state, not a trained model"):
        load_model(tiny_checkpoint.with_name("model.pt.state"))


def test_weights_that_do_not_fit_the_recorded_network_are_an_input_error(tiny_checkpoint, tmp_path):
    payload = torch.load(tiny_checkpoint, weights_only=True)
    payload["network"]["channels"] = [16, 16, 16]
    torch.save(payload, tmp_path / "model.pt")
    with pytest.raises(InputError, match="weights do not match"):
        load_model(tmp_path / "model.pt")


def test_mismatched_volume_geometry_is_an_input_error_naming_both(tiny_checkpoint):
    loaded = load_model(tiny_checkpoint)
    loaded.check_geometry((16, 16, 16), (2.0, 2.0, 2.0))
    with pytest.raises(InputError, match=r"trained on volumes of \(16, 16, 16\).*m.nii.gz is \(16, 16, 32\)") as err:
        loaded.check_geometry((16, 16, 32), what="the mask m.nii.gz")
    assert err.value.where == str(tiny_checkpoint)
    with pytest.raises(InputError, match="voxel spacing"):
        loaded.check_geometry((16, 16, 16), (2.5, 0.7, 0.7))
