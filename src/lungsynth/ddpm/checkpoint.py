"""Checkpoints: the model file that sampling needs, and the training state that resumes a killed run.

Two files, written atomically (``torch.save`` to a temporary sibling, then ``os.replace``):

- the **model** (e.g. ``results/ddpm/model.pt``), written once when training ends: the EMA
  weights plus everything needed to sample without a config (network arguments, noise schedule,
  intensity window (and the mean image, if the model is relative to one, and the scale of the
  diffused quantity), volume and patch size,
  voxel spacing, training-data hash, step);
- the **training state** (``model.pt.state`` by default), rewritten every ``checkpoint_every``
  steps: weights, optimizer, EMA, random-generator state and the loss history, tagged with a
  fingerprint of the settings and data so a stale state from another configuration is ignored.

Both are read with ``torch.load(weights_only=True)``: plain containers and tensors only, so a
checkpoint cannot run code when it is loaded.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import torch

from .. import __version__
from ..errors import InputError
from ..io import atomic_path
from .network import build_network, levels_of
from .settings import DdpmSettings, IntensitySettings, ScheduleSettings

log = logging.getLogger("lungsynth.ddpm")

MODEL_FORMAT = "lungsynth-ddpm-model"
STATE_FORMAT = "lungsynth-ddpm-train-state"
FORMAT_VERSION = 1
_MODEL_KEYS = ("network", "schedule", "intensity", "volume_size", "patch_size", "spacing", "data_hash",
               "step", "settings", "ema_state_dict")


def plain(obj) -> Any:
    """Dataclasses/tuples -> JSON-like lists and dicts (what ``weights_only`` loading accepts)."""
    if dataclasses.is_dataclass(obj):
        obj = dataclasses.asdict(obj)
    return json.loads(json.dumps(obj))


def save_atomic(path, payload: dict) -> None:
    """``torch.save`` to a temporary name in the same folder, then rename into place."""
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)


def _load(path, kind: str) -> dict:
    path = Path(path)
    if not path.exists():
        raise InputError(path, f"{kind} not found")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises pickle, zip, EOF and runtime errors for bad files
        detail = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise InputError(path, f"not a readable {kind} (corrupt or truncated file? {detail[:160]})") from None
    return payload


@dataclass(frozen=True)
class LoadedModel:
    """A trained denoiser ready to sample, with what its checkpoint records about its training."""

    path: Path
    model: torch.nn.Module
    network: dict
    schedule: ScheduleSettings
    intensity: IntensitySettings
    volume_size: tuple[int, int, int]
    patch_size: tuple[int, int, int]
    spacing: tuple[float, float, float] | None
    data_hash: str
    step: int
    settings: dict
    mean_image: torch.Tensor | None = None   # (D, H, W) model intensity the samples are relative to
    data_scale: float = 1.0                   # the diffused quantity is (image - mean image) x data_scale

    @property
    def levels(self) -> int:
        return levels_of(self.network)

    def check_geometry(self, shape: Sequence[int], spacing: Sequence[float] | None = None,
                       what: str = "the mask") -> None:
        """InputError (naming this checkpoint) unless ``shape`` (z, y, x) and spacing (mm, z, y, x)
        are those the model was trained on: the coordinate channels only mean the same position
        on the same grid."""
        shape = tuple(int(s) for s in shape)
        if shape != self.volume_size:
            raise InputError(self.path, f"trained on volumes of {self.volume_size} voxels (z, y, x), "
                                        f"but {what} is {shape}")
        if spacing is not None and self.spacing is not None:
            spacing = tuple(float(s) for s in spacing)
            if any(abs(a - b) > 1e-3 * max(abs(b), 1.0) for a, b in zip(spacing, self.spacing)):
                raise InputError(self.path, f"trained at voxel spacing {_mm(self.spacing)} mm (z, y, x), "
                                            f"but {what} has {_mm(spacing)} mm; resample it first")


def _mm(spacing) -> str:
    return "(" + ", ".join(f"{s:g}" for s in spacing) + ")"


def save_model(path, ema_model: torch.nn.Module, *, settings: DdpmSettings, network: dict,
               volume_size: Sequence[int], spacing: Sequence[float] | None, data_hash: str, step: int,
               n_cases: int | None = None, mean_image: torch.Tensor | None = None, data_scale: float = 1.0) -> None:
    """Write the model checkpoint (EMA weights + everything sampling needs), atomically."""
    payload = {
        "format": MODEL_FORMAT,
        "version": FORMAT_VERSION,
        "lungsynth_version": __version__,
        "network": plain(network),
        "schedule": plain(settings.schedule),
        "intensity": plain(settings.intensity),
        "volume_size": [int(v) for v in volume_size],
        "patch_size": [int(p) for p in settings.training.patch_size],
        "spacing": None if spacing is None else [float(s) for s in spacing],
        "data_hash": str(data_hash),
        "n_cases": n_cases,
        "step": int(step),
        "settings": plain(settings),
        "ema_state_dict": {k: v.detach().cpu().clone() for k, v in ema_model.state_dict().items()},
        "mean_image": None if mean_image is None else mean_image.detach().cpu().to(torch.float32).clone(),
        "data_scale": float(data_scale),
    }
    save_atomic(path, payload)


def load_model(path, device: str | torch.device = "cpu") -> LoadedModel:
    """Read a model checkpoint; InputError naming the file if it is unreadable, not ours or inconsistent."""
    path = Path(path)
    payload = _load(path, "DDPM checkpoint")
    if not isinstance(payload, dict) or payload.get("format") != MODEL_FORMAT:
        if isinstance(payload, dict) and payload.get("format") == STATE_FORMAT:
            raise InputError(path, "this is a training state, not a trained model; pass the model file "
                                   "(e.g. results/ddpm/model.pt)")
        raise InputError(path, "not a lungsynth DDPM checkpoint (no 'format' tag "
                               f"'{MODEL_FORMAT}'); was it written by another program?")
    if int(payload.get("version", 0)) > FORMAT_VERSION:
        raise InputError(path, f"checkpoint format version {payload['version']} is newer than this "
                               f"lungsynth ({FORMAT_VERSION}); update lungsynth")
    missing = [k for k in _MODEL_KEYS if k not in payload]
    if missing:
        raise InputError(path, f"checkpoint lacks {missing}")
    try:
        schedule = ScheduleSettings.from_config(payload["schedule"])
        intensity = IntensitySettings.from_config(payload["intensity"])
        model = build_network(payload["network"])
    except (InputError, TypeError, ValueError, KeyError) as err:
        raise InputError(path, f"recorded settings are invalid ({str(err)[:200]})") from None
    try:
        model.load_state_dict(payload["ema_state_dict"], strict=True)
    except (TypeError, RuntimeError, AttributeError) as err:
        detail = str(err).strip().splitlines()[0][:200]
        raise InputError(path, f"weights do not match the recorded network ({detail})") from None
    model.to(device).eval().requires_grad_(False)
    mean = payload.get("mean_image")
    if intensity.mean_image and (not isinstance(mean, torch.Tensor) or
                                 tuple(mean.shape) != tuple(int(v) for v in payload["volume_size"])):
        raise InputError(path, f"trained relative to a mean image, but the checkpoint's mean image is "
                               f"{'missing' if mean is None else tuple(getattr(mean, 'shape', ()))}, not of "
                               f"the volume size {payload['volume_size']}")
    return LoadedModel(
        path=path, model=model, network=payload["network"], schedule=schedule, intensity=intensity,
        volume_size=tuple(int(v) for v in payload["volume_size"]),
        patch_size=tuple(int(p) for p in payload["patch_size"]),
        spacing=None if payload["spacing"] is None else tuple(float(s) for s in payload["spacing"]),
        data_hash=str(payload["data_hash"]), step=int(payload["step"]), settings=payload["settings"],
        mean_image=mean if intensity.mean_image else None,
        data_scale=float(payload.get("data_scale", 1.0)),
    )


def state_fingerprint(settings: DdpmSettings, data_hash: str, volume_size: Sequence[int]) -> str:
    """What a training state must match to be resumed: every setting that changes the arithmetic
    and the data. ``steps`` only where the learning rate decays over them (a cosine run resumed
    with another step count would follow another curve); with a constant rate a longer run
    continues a shorter one."""
    values = plain(settings)
    if settings.training.lr_schedule == "constant":
        values["training"].pop("steps")
    blob = json.dumps({"settings": values, "data": data_hash, "volume": list(volume_size),
                       "format": FORMAT_VERSION}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()


def save_state(path, state: dict) -> None:
    """Write the resumable training state atomically."""
    save_atomic(path, {"format": STATE_FORMAT, "version": FORMAT_VERSION, **state})


def load_state(path, fingerprint: str) -> dict | None:
    """The training state at ``path`` if it exists and belongs to this training (same fingerprint).

    A state from other settings or data is ignored (with a log line); an unreadable one is an
    InputError, since a half-written state cannot happen (atomic writes) and deserves a look.
    """
    path = Path(path)
    if not path.exists():
        return None
    payload = _load(path, "training state")
    if not isinstance(payload, dict) or payload.get("format") != STATE_FORMAT:
        raise InputError(path, "not a lungsynth DDPM training state; delete it to start training afresh")
    if payload.get("fingerprint") != fingerprint:
        log.warning("%s: training state belongs to other settings or data; starting afresh", path)
        return None
    return payload
