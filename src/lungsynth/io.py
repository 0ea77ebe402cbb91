"""Reading and writing files at the edges: NIfTI volumes, tables, JSON, figures.

Every writer goes through :func:`atomic_path`: it writes to a hidden temporary name in the
destination folder and renames it into place, so a killed job never leaves a half-written
file under its final name.
"""

from __future__ import annotations

import contextlib
import json
import os
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np
import SimpleITK as sitk

from .errors import InputError


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary sibling of ``path`` (same suffixes); rename it to ``path`` on success."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    suffixes = "".join(path.suffixes)
    tmp = path.with_name(f".tmp-{uuid.uuid4().hex[:8]}-{path.name[: len(path.name) - len(suffixes)]}{suffixes}")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


@dataclass(frozen=True)
class Geometry:
    """Physical grid of a volume in SimpleITK's convention (LPS, x/y/z order).

    Arrays in this project are indexed ``(z, y, x)`` (SimpleITK's ``GetArrayFromImage``).
    """

    spacing: tuple[float, float, float]
    origin: tuple[float, float, float]
    direction: tuple[float, ...] = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0)

    @classmethod
    def of(cls, image: sitk.Image) -> "Geometry":
        return cls(tuple(image.GetSpacing()), tuple(image.GetOrigin()), tuple(image.GetDirection()))

    def apply(self, image: sitk.Image) -> sitk.Image:
        image.SetSpacing(self.spacing)
        image.SetOrigin(self.origin)
        image.SetDirection(self.direction)
        return image

    def index_to_physical(self, index_xyz) -> np.ndarray:
        """Physical (LPS, mm) position of a continuous voxel index given as (x, y, z)."""
        d = np.asarray(self.direction).reshape(3, 3)
        return np.asarray(self.origin) + d @ (np.asarray(index_xyz, float) * np.asarray(self.spacing))

    def matches(self, other: "Geometry", atol: float = 1e-3) -> bool:
        return all(
            np.allclose(a, b, atol=atol)
            for a, b in ((self.spacing, other.spacing), (self.origin, other.origin), (self.direction, other.direction))
        )


def to_image(array: np.ndarray, geometry: Geometry) -> sitk.Image:
    """A SimpleITK image from a ``(z, y, x)`` array and its geometry."""
    return geometry.apply(sitk.GetImageFromArray(np.ascontiguousarray(array)))


def write_nifti(path, array: np.ndarray, geometry: Geometry, dtype=None) -> None:
    """Write a ``(z, y, x)`` array as NIfTI with the affine given by ``geometry``."""
    if dtype is not None:
        array = array.astype(dtype)
    with atomic_path(path) as tmp:
        sitk.WriteImage(to_image(array, geometry), str(tmp), useCompression=True)


def read_nifti(path) -> tuple[np.ndarray, Geometry]:
    """Read a NIfTI volume as a ``(z, y, x)`` array and its geometry; InputError if unreadable."""
    path = Path(path)
    if not path.exists():
        raise InputError(path, "file not found")
    try:
        image = sitk.ReadImage(str(path))
    except RuntimeError as err:
        raise InputError(path, f"not a readable image ({str(err).strip().splitlines()[-1]})") from None
    if image.GetDimension() != 3 or image.GetNumberOfComponentsPerPixel() != 1:
        raise InputError(path, f"expected a 3D single-channel volume, got {image.GetDimension()}D "
                               f"with {image.GetNumberOfComponentsPerPixel()} components")
    return sitk.GetArrayFromImage(image), Geometry.of(image)


def write_json(path, obj) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, sort_keys=False) + "\n")


def read_json(path):
    path = Path(path)
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise InputError(path, "file not found") from None
    except json.JSONDecodeError as err:
        raise InputError(path, f"not valid JSON ({err})") from None


def write_csv(path, frame, **kwargs) -> None:
    """Write a pandas DataFrame as CSV atomically (no index unless asked)."""
    kwargs.setdefault("index", False)
    with atomic_path(path) as tmp:
        frame.to_csv(tmp, **kwargs)


def save_figure(path, figure, dpi: int = 110) -> None:
    """Save a matplotlib figure atomically and close it."""
    import matplotlib.pyplot as plt

    with atomic_path(path) as tmp:
        figure.savefig(tmp, dpi=dpi, bbox_inches="tight")
    plt.close(figure)
