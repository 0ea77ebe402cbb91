"""Per-case Dice by the paper's formula (4), and the nodule properties that explain a bad case.

    DSC = 2 TP / (2 TP + FP + FN)                  (paper, formula 4; voxels of label 1)

**Empty truth and empty prediction.** Formula (4) is 0/0 there; nnU-Net reports NaN and
drops the case from its means. The project scores it ``empty_dice`` (default 1.0: the model
correctly found nothing) so that every case counts in every mean and the number of cases per
arm is the same; an empty truth with a non-empty prediction scores 0, as the formula gives.
The table keeps TP/FP/FN and the voxel counts, so the choice can be redone from it.
"""

from __future__ import annotations

from typing import Mapping

import numpy as np
import pandas as pd
from scipy import ndimage

from ..errors import InputError
from ..io import read_nifti
from ..preprocess.lung import lung_mask as find_lung_mask

DICE_COLUMNS = ["case", "dice", "tp", "fp", "fn", "truth_voxels", "predicted_voxels"]


def confusion_counts(truth: np.ndarray, prediction: np.ndarray) -> tuple[int, int, int]:
    """TP, FP, FN voxel counts of two label maps of the same shape (label > 0 is nodule)."""
    truth = np.asarray(truth) > 0
    prediction = np.asarray(prediction) > 0
    if truth.shape != prediction.shape:
        raise ValueError(f"truth {truth.shape} and prediction {prediction.shape} differ in shape")
    tp = int(np.count_nonzero(truth & prediction))
    fp = int(np.count_nonzero(prediction & ~truth))
    fn = int(np.count_nonzero(truth & ~prediction))
    return tp, fp, fn


def dice_from_counts(tp: int, fp: int, fn: int, empty_dice: float = 1.0) -> float:
    """Formula (4); ``empty_dice`` when truth and prediction are both empty (0/0)."""
    denominator = 2 * tp + fp + fn
    return float(empty_dice) if denominator == 0 else 2.0 * tp / denominator


def dice(truth: np.ndarray, prediction: np.ndarray, empty_dice: float = 1.0) -> float:
    """Dice of two ``(z, y, x)`` label maps by formula (4) (see the module note on empty cases)."""
    return dice_from_counts(*confusion_counts(truth, prediction), empty_dice=empty_dice)


def dice_table(cases: Mapping[str, tuple], empty_dice: float = 1.0) -> pd.DataFrame:
    """One row per case from ``case -> (truth path, prediction path)``: Dice, TP, FP, FN, sizes.

    The two files of a case must share shape and grid (predictions are written on the
    image's grid); a mismatch is an InputError naming the prediction.
    """
    rows = []
    for case, (truth_path, prediction_path) in sorted(cases.items()):
        truth, truth_geometry = read_nifti(truth_path)
        prediction, prediction_geometry = read_nifti(prediction_path)
        if truth.shape != prediction.shape or not truth_geometry.matches(prediction_geometry):
            raise InputError(prediction_path, f"grid {prediction.shape} does not match the truth {truth_path} "
                                              f"{truth.shape}")
        tp, fp, fn = confusion_counts(truth, prediction)
        rows.append({"case": case, "dice": dice_from_counts(tp, fp, fn, empty_dice), "tp": tp, "fp": fp,
                     "fn": fn, "truth_voxels": tp + fn, "predicted_voxels": tp + fp})
    return pd.DataFrame(rows, columns=DICE_COLUMNS)


def nnunet_dice(truth_path, prediction_path) -> float:
    """nnU-Net's own Dice of label 1 (``evaluate_predictions.compute_metrics``); NaN if both empty.

    Only for cross-checking :func:`dice`: the project's tables use :func:`dice_table`.
    """
    from nnunetv2.evaluation.evaluate_predictions import compute_metrics
    from nnunetv2.imageio.simpleitk_reader_writer import SimpleITKIO

    metrics = compute_metrics(str(truth_path), str(prediction_path), SimpleITKIO(), [1])
    return float(metrics["metrics"][1]["Dice"])


# ----------------------------------------------------------------------------- why a case is hard


def nodule_properties(mask: np.ndarray, spacing_zyx, lung_mask: np.ndarray | None = None) -> dict:
    """Count, total and largest volume (mm^3) of the nodules in ``mask``, and their distance to the pleura.

    ``distance_to_pleura_mm``: the smallest distance from a nodule voxel's centre to the
    centre of a voxel outside the lung (``lung_mask`` united with the nodules, so a dense
    nodule does not count as outside): one voxel spacing for a nodule touching the pleura.
    NaN without a lung mask or without a nodule.
    ``spacing_zyx`` in mm, array order (note: :class:`lungsynth.io.Geometry` stores x, y, z).
    """
    mask = np.asarray(mask) > 0
    spacing_zyx = tuple(float(s) for s in spacing_zyx)
    labels, count = ndimage.label(mask, structure=np.ones((3, 3, 3)))
    voxel_mm3 = float(np.prod(spacing_zyx))
    sizes = np.bincount(labels.ravel())[1:] * voxel_mm3 if count else np.zeros(0)
    distance = float("nan")
    if lung_mask is not None and count:
        lung = (np.asarray(lung_mask) > 0) | mask
        if lung.shape != mask.shape:
            raise ValueError(f"lung mask {lung.shape} and nodule mask {mask.shape} differ in shape")
        inside = ndimage.distance_transform_edt(np.pad(lung, 1), sampling=spacing_zyx)[1:-1, 1:-1, 1:-1]
        distance = float(inside[mask].min())
    return {"nodules": int(count), "nodule_volume_mm3": float(sizes.sum()),
            "largest_nodule_mm3": float(sizes.max()) if count else 0.0, "distance_to_pleura_mm": distance}


def describe_cases(cases, masks: Mapping[str, object], images: Mapping[str, object] | None = None,
                   lung_masks: Mapping[str, object] | None = None) -> pd.DataFrame:
    """:func:`nodule_properties` of each case from its files: ``case, nodules, nodule_volume_mm3, ...``.

    The lung for the pleura distance comes from ``lung_masks`` when given, else from the data
    layer's :func:`lungsynth.preprocess.lung.lung_mask` of the image, else the distance is left
    NaN. For the reasons column of the worst validation cases (the paper looked at nodules near
    the pleura).
    """
    rows = []
    for case in cases:
        mask, geometry = read_nifti(masks[case])
        lung = None
        if lung_masks is not None and case in lung_masks:
            lung = read_nifti(lung_masks[case])[0]
        elif images is not None and case in images:
            image, image_geometry = read_nifti(images[case])
            lung = find_lung_mask(image, image_geometry.spacing[::-1])
        rows.append({"case": case, **nodule_properties(mask, geometry.spacing[::-1], lung)})
    return pd.DataFrame(rows, columns=["case", "nodules", "nodule_volume_mm3", "largest_nodule_mm3",
                                       "distance_to_pleura_mm"])
