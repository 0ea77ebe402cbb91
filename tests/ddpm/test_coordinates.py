import numpy as np
import torch

from lungsynth.ddpm.coordinates import PatchSampler, coordinate_grid, crop, whole_condition
from .toys import toy_volumes


def _sampler(fraction=0.0, shape=(16, 24, 32), patch=(8, 8, 16)):
    images, masks = toy_volumes(3, shape)
    return PatchSampler(torch.from_numpy(np.stack(images)),
                        torch.from_numpy(np.stack(masks)), patch, fraction)


def test_coordinate_grid_spans_minus_one_to_one_per_axis():
    grid = coordinate_grid((4, 5, 6))
    assert grid.shape == (3, 4, 5, 6)
    for axis in range(3):
        values = grid[axis].movedim(axis, 0)
        assert torch.allclose(values[0], torch.tensor(-1.0)) and torch.allclose(values[-1], torch.tensor(1.0))
    assert torch.all(grid[0, 1] > grid[0, 0]) and torch.all(grid[2, :, :, 1] > grid[2, :, :, 0])


def test_patch_coordinates_equal_crop_of_whole_grid():
    sampler = _sampler()
    generator = torch.Generator().manual_seed(1)
    hu, condition, where = sampler.sample(6, generator)
    assert hu.shape == (6, 1, 8, 8, 16) and condition.shape == (6, 4, 8, 8, 16)
    grid = coordinate_grid((16, 24, 32))
    for b, (case, corner) in enumerate(where):
        assert torch.equal(condition[b, 1:], crop(grid, corner, (8, 8, 16)))
        assert torch.equal(condition[b, 0], crop(sampler.masks[case], corner, (8, 8, 16)).float())
        assert torch.equal(hu[b, 0], crop(sampler.images[case], corner, (8, 8, 16)).float())


def test_nodule_biased_patches_contain_nodule_and_stay_inside():
    sampler = _sampler(fraction=1.0)
    generator = torch.Generator().manual_seed(2)
    _, condition, where = sampler.sample(40, generator)
    assert (condition[:, 0].flatten(1).sum(1) > 0).all()
    for _, (z, y, x) in where:
        assert 0 <= z <= 8 and 0 <= y <= 16 and 0 <= x <= 16


def test_same_generator_state_gives_same_patches():
    sampler = _sampler(fraction=0.5)
    a = sampler.sample(4, torch.Generator().manual_seed(3))[2]
    b = sampler.sample(4, torch.Generator().manual_seed(3))[2]
    assert a == b


def test_whole_condition_is_mask_then_grid():
    mask = torch.zeros(4, 8, 8, dtype=torch.uint8)
    mask[1, 2, 3] = 1
    condition = whole_condition(mask.numpy())
    assert condition.shape == (1, 4, 4, 8, 8)
    assert condition[0, 0].sum() == 1 and condition[0, 0, 1, 2, 3] == 1
    assert torch.equal(condition[0, 1:], coordinate_grid((4, 8, 8)))


def _coverage(draw):
    from lungsynth.ddpm.coordinates import PatchSampler

    images = torch.zeros((1, 24, 32, 32), dtype=torch.int16)
    sampler = PatchSampler(images, torch.zeros_like(images, dtype=torch.uint8), (8, 16, 16), draw=draw)
    return sampler.coverage(30000, torch.Generator().manual_seed(0))


def test_padded_patch_draw_covers_the_crop_uniformly_within_ten_percent():
    coverage = _coverage("padded")
    assert coverage.min() > 0.9 and coverage.max() < 1.1


def test_corner_draw_underserves_the_border():
    coverage = _coverage("corner")
    assert coverage[0, 0, 0] < 0.1 * coverage[12, 16, 16]


def test_a_patch_reaching_out_of_the_crop_holds_air_and_continues_the_coordinates():
    from lungsynth.ddpm.coordinates import coordinate_grid, crop, patch_coordinates

    volume = torch.arange(4 * 5 * 6, dtype=torch.float32).reshape(4, 5, 6)
    out = crop(volume, (-2, 1, 3), (4, 3, 4), fill=-1.0)
    assert out.shape == (4, 3, 4)
    assert (out[:2] == -1).all() and (out[:, :, 3] == -1).all()
    assert torch.equal(out[2:, :, :3], volume[:2, 1:4, 3:6])
    grid = coordinate_grid((4, 5, 6))
    coords = patch_coordinates((4, 5, 6), (-2, 1, 3), (4, 3, 4))
    assert torch.allclose(coords[:, 2:, :, :3], grid[:, :2, 1:4, 3:6])
    assert coords[0, 0, 0, 0] < -1 and coords[2, 0, 0, 3] > 1
