import pytest
import torch

from lungsynth.ddpm.network import IN_CHANNELS, build_network, check_divisible, network_config
from lungsynth.ddpm.settings import NetworkSettings
from lungsynth.errors import InputError

TINY = NetworkSettings.from_config({"channels": (8, 16, 16), "norm_num_groups": 8})


def test_network_maps_five_channels_to_one_on_patches_and_whole_volumes():
    net = build_network(network_config(TINY)).eval()
    with torch.no_grad():
        for shape in [(8, 8, 8), (16, 12, 20)]:
            out = net(torch.randn(2, IN_CHANNELS, *shape), torch.tensor([0, 999]))
            assert out.shape == (2, 1, *shape)


def test_network_has_no_attention():
    net = build_network(network_config(TINY))
    names = [type(m).__name__.lower() for m in net.modules()]
    assert not any("attention" in n or "transformer" in n for n in names)


def test_sides_must_divide_by_two_to_the_levels_minus_one():
    check_divisible((16, 12, 20), 3, "x")
    with pytest.raises(InputError, match="divide by 4"):
        check_divisible((16, 14, 20), 3, "ddpm.training.patch_size")
