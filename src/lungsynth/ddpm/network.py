"""The denoiser: MONAI's DiffusionModelUNet, 3D, 5 channels in ([x_t, mask, z, y, x]), 1 out.

Attention is off at every level (full-volume attention does not fit in memory, as in PatchDDM),
so the net is fully convolutional and runs on a patch, a window or the whole volume alike.
MONAI 1.6's DiffusionModelUNet always puts a self-attention block in its middle block, whatever
``attention_levels`` says; :func:`build_network` replaces it by the identity (config key
``mid_block_attention: False``). Otherwise whole-volume sampling would attend across far more
tokens than the training patches had (a train/sample mismatch) with memory quadratic in the
volume (a 128^3 volume through 3 levels: 32^3 tokens, a 32768^2 attention matrix per head).
The keyword arguments are recorded in the checkpoint, so sampling rebuilds the same net.
"""

from __future__ import annotations

from typing import Any, Sequence

import torch
from monai.networks.nets import DiffusionModelUNet

from ..errors import InputError
from .settings import NetworkSettings

IN_CHANNELS = 5  # x_t, nodule mask, z, y, x
OUT_CHANNELS = 1  # epsilon (or v)


def network_config(settings: NetworkSettings) -> dict[str, Any]:
    """Plain keyword arguments of :class:`DiffusionModelUNet` (what the checkpoint stores), plus
    ``coordinate_frequencies`` (Fourier features of the coordinates, :class:`CoordinateFeatures`)."""
    levels = settings.levels
    return {
        "spatial_dims": 3,
        "in_channels": IN_CHANNELS + CoordinateFeatures.extra_channels(settings.coordinate_frequencies),
        "coordinate_frequencies": settings.coordinate_frequencies,
        "out_channels": OUT_CHANNELS,
        "channels": list(settings.channels),
        "num_res_blocks": settings.num_res_blocks,
        "attention_levels": [False] * levels,
        "norm_num_groups": settings.norm_num_groups,
        "resblock_updown": settings.resblock_updown,
        "with_conditioning": False,
        "mid_block_attention": False,
    }


class CoordinateFeatures(torch.nn.Module):
    """The denoiser with Fourier features of its coordinate channels.

    Takes the usual ``[x_t, mask, z, y, x]`` and hands the U-Net ``[x_t, mask, z, y, x,
    sin(2^k pi c), cos(2^k pi c) for k < frequencies and c in (z, y, x)]``: a patch's position at
    several scales, which a few convolutions on the raw ramps resolve only slowly (NeRF-style
    positional encoding). Computed on the fly, so patches and the whole volume get the same features.
    """

    def __init__(self, unet: torch.nn.Module, frequencies: int):
        super().__init__()
        self.unet, self.frequencies = unet, int(frequencies)

    @staticmethod
    def extra_channels(frequencies: int) -> int:
        return 6 * int(frequencies)

    def forward(self, x: torch.Tensor, timesteps: torch.Tensor) -> torch.Tensor:
        coords = x[:, 2:5]
        scales = (2.0 ** torch.arange(self.frequencies, device=x.device, dtype=x.dtype)) * torch.pi
        angles = (coords[:, :, None] * scales.view(1, 1, -1, *([1] * (x.ndim - 2)))).flatten(1, 2)
        return self.unet(torch.cat([x, torch.sin(angles), torch.cos(angles)], dim=1), timesteps)


def build_network(config: dict[str, Any]) -> torch.nn.Module:
    """The net from :func:`network_config`'s arguments (fresh weights)."""
    kwargs = dict(config)
    frequencies = int(kwargs.pop("coordinate_frequencies", 0))
    mid_block_attention = kwargs.pop("mid_block_attention", True)
    kwargs["channels"] = tuple(kwargs["channels"])
    kwargs["attention_levels"] = tuple(kwargs["attention_levels"])
    net = DiffusionModelUNet(**kwargs)
    if not mid_block_attention:
        # AttnMidBlock.forward is resnet_1 -> attention -> resnet_2; the identity keeps it convolutional
        net.middle_block.attention = torch.nn.Identity()
    return CoordinateFeatures(net, frequencies) if frequencies else net


def levels_of(config: dict[str, Any]) -> int:
    return len(config["channels"])


def check_divisible(shape: Sequence[int], levels: int, where: str, what: str = "size") -> None:
    """InputError unless every side divides by 2^(levels-1) (each level but the last halves it)."""
    factor = 2 ** (levels - 1)
    if any(int(s) % factor for s in shape):
        raise InputError(where, f"{what} {tuple(int(s) for s in shape)} (z, y, x): every side must divide by "
                                f"{factor} = 2^(levels-1) for a net with {levels} levels")


def count_parameters(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
