"""Coordinate channels and random patches (PatchDDM): a patch carries its absolute position.

The z/y/x coordinate grid is built once for the **whole** volume, in [-1, 1] per axis, and is
cropped together with the image and the mask, so the network always knows which part of the
volume it sees; at sampling time the whole grid (or a window of it) is given.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from ..errors import InputError


def coordinate_grid(shape: Sequence[int]) -> torch.Tensor:
    """Whole-volume coordinates ``(3, D, H, W)`` float32: channel 0 = z, 1 = y, 2 = x, each in [-1, 1].

    Voxel centres map linearly from index 0 -> -1 to index n-1 -> +1 (a side of 1 voxel -> 0).
    """
    axes = [torch.linspace(-1.0, 1.0, n) if n > 1 else torch.zeros(1) for n in shape]
    return torch.stack(torch.meshgrid(*axes, indexing="ij")).to(torch.float32)


def check_patch_fits(volume_shape: Sequence[int], patch_size: Sequence[int], where: str) -> None:
    """InputError unless every side of ``patch_size`` is <= the volume's side."""
    if len(patch_size) != 3 or any(p > v for p, v in zip(patch_size, volume_shape)):
        raise InputError(where, f"patch size {tuple(patch_size)} does not fit in volumes of "
                                f"{tuple(volume_shape)} (z, y, x)")


def crop(volume: torch.Tensor, corner: Sequence[int], size: Sequence[int], fill: float = 0.0) -> torch.Tensor:
    """The ``size`` block of ``volume (..., D, H, W)`` starting at voxel ``corner`` (z, y, x); where
    the block reaches outside the volume (a corner below 0 or past the end), ``fill``."""
    shape = volume.shape[-3:]
    if all(0 <= c and c + s <= n for c, s, n in zip(corner, size, shape)):
        (z, y, x), (d, h, w) = corner, size
        return volume[..., z:z + d, y:y + h, x:x + w]
    out = torch.full((*volume.shape[:-3], *size), fill, dtype=volume.dtype)
    inside = [(max(c, 0), min(c + s, n)) for c, s, n in zip(corner, size, shape)]
    if all(lo < hi for lo, hi in inside):
        source = tuple(slice(lo, hi) for lo, hi in inside)
        target = tuple(slice(lo - c, hi - c) for (lo, hi), c in zip(inside, corner))
        out[(..., *target)] = volume[(..., *source)]
    return out


def patch_coordinates(volume_shape: Sequence[int], corner: Sequence[int], size: Sequence[int]) -> torch.Tensor:
    """The coordinate channels ``(3, *size)`` of a patch at ``corner``: :func:`coordinate_grid`'s
    values, continued linearly where the patch reaches outside the volume (beyond -1 and 1)."""
    axes = []
    for c, s, n in zip(corner, size, volume_shape):
        index = torch.arange(c, c + s, dtype=torch.float32)
        axes.append(index * (2.0 / (n - 1)) - 1.0 if n > 1 else torch.zeros(s))
    return torch.stack(torch.meshgrid(*axes, indexing="ij")).to(torch.float32)


class PatchSampler:
    """Draws training batches of random patches from whole volumes held in memory.

    ``images (N, D, H, W)`` HU (int16 keeps memory low), ``masks (N, D, H, W)`` nodule masks.
    With probability ``nodule_fraction`` a patch is placed so that it contains a randomly chosen
    nodule voxel (at a random position inside the patch); otherwise it is uniform over the volume.
    Every draw uses ``generator``, so its state (saved in the checkpoint) fixes the sequence.
    """

    def __init__(self, images: torch.Tensor, masks: torch.Tensor, patch_size: Sequence[int],
                 nodule_fraction: float = 0.0, draw: str = "corner", air_hu: int = -1024):
        if images.shape != masks.shape or images.ndim != 4:
            raise ValueError(f"images {tuple(images.shape)} and masks {tuple(masks.shape)} must be (N, D, H, W)")
        self.images, self.masks = images, masks
        self.volume_shape = tuple(images.shape[1:])
        self.patch_size = tuple(int(p) for p in patch_size)
        check_patch_fits(self.volume_shape, self.patch_size, "ddpm.training.patch_size")
        self.nodule_fraction = float(nodule_fraction)
        if draw not in ("corner", "padded"):
            raise InputError("ddpm.training.patch_draw", f"expected corner or padded, got {draw!r}")
        self.draw, self.air_hu = draw, int(air_hu)
        self.grid = coordinate_grid(self.volume_shape)
        # flat indices of nodule voxels per case (empty for cases without a nodule)
        self.nodule_voxels = [torch.nonzero(m.reshape(-1) > 0).reshape(-1) for m in masks]

    def corner(self, case: int, generator: torch.Generator) -> tuple[int, int, int]:
        """Corner (z, y, x) of one random patch in case ``case``."""
        limits = [v - p for v, p in zip(self.volume_shape, self.patch_size)]
        voxels = self.nodule_voxels[case]
        biased = len(voxels) > 0 and self.nodule_fraction > 0 and \
            float(torch.rand((), generator=generator)) < self.nodule_fraction
        if biased:
            flat = int(voxels[int(torch.randint(len(voxels), (), generator=generator))])
            centre = np.unravel_index(flat, self.volume_shape)
            offsets = [int(torch.randint(p, (), generator=generator)) for p in self.patch_size]
            return tuple(int(min(max(c - o, 0), lim)) for c, o, lim in zip(centre, offsets, limits))
        return self.uniform_corner(generator)

    def uniform_corner(self, generator: torch.Generator) -> tuple[int, int, int]:
        """A patch corner by ``draw``: ``corner``, uniform inside the volume (the border voxels lie in
        fewer patches than the centre's); ``padded``, uniform over every placement that overlaps the
        volume (each voxel lies in equally many; the patch holds air where it reaches out)."""
        if self.draw == "padded":
            return tuple(int(torch.randint(v + p - 1, (), generator=generator)) - (p - 1)
                         for v, p in zip(self.volume_shape, self.patch_size))
        return tuple(int(torch.randint(v - p + 1, (), generator=generator))
                     for v, p in zip(self.volume_shape, self.patch_size))

    def coverage(self, draws: int, generator: torch.Generator) -> torch.Tensor:
        """How often each voxel ``(D, H, W)`` lies in a patch of :meth:`uniform_corner` over ``draws``
        draws, relative to the mean (1 everywhere: uniform). The axes are drawn independently, so
        the map is the product of the three axes' counts."""
        counts = [torch.zeros(v) for v in self.volume_shape]
        for _ in range(draws):
            for axis, (c, p, v) in enumerate(zip(self.uniform_corner(generator), self.patch_size, self.volume_shape)):
                counts[axis][max(c, 0):min(c + p, v)] += 1
        z, y, x = (c / c.mean() for c in counts)
        return z[:, None, None] * y[None, :, None] * x[None, None, :]

    def coordinates(self, corner: Sequence[int]) -> torch.Tensor:
        """``(3, *patch)`` coordinates of the patch at ``corner`` (continued outside the volume)."""
        if all(0 <= c and c + p <= n for c, p, n in zip(corner, self.patch_size, self.volume_shape)):
            return crop(self.grid, corner, self.patch_size)
        return patch_coordinates(self.volume_shape, corner, self.patch_size)

    def sample(self, batch_size: int, generator: torch.Generator):
        """One batch: ``hu (B, 1, *patch)`` float32 HU, ``condition (B, 4, *patch)`` = [mask, z, y, x],
        and the corners ``[(case, (z, y, x)), ...]``."""
        hu, condition, where = [], [], []
        for _ in range(batch_size):
            case = int(torch.randint(len(self.images), (), generator=generator))
            corner = self.corner(case, generator)
            hu.append(crop(self.images[case], corner, self.patch_size, self.air_hu).to(torch.float32)[None])
            mask = crop(self.masks[case], corner, self.patch_size).to(torch.float32)[None]
            condition.append(torch.cat([mask, self.coordinates(corner)]))
            where.append((case, corner))
        return torch.stack(hu), torch.stack(condition), where


def whole_condition(mask, grid: torch.Tensor | None = None) -> torch.Tensor:
    """Condition channels for the whole volume: ``(1, 4, D, H, W)`` = [mask, z, y, x] (float32)."""
    mask = torch.as_tensor(np.asarray(mask) if not isinstance(mask, torch.Tensor) else mask)
    mask = (mask > 0).to(torch.float32)
    grid = coordinate_grid(mask.shape) if grid is None else grid
    return torch.cat([mask[None], grid])[None]
