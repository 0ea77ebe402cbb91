"""The procedural chest and its fit around real nodules."""

from __future__ import annotations

import numpy as np

from lungsynth.phantom.anatomy import Chest, Patient, Placement, default_placement, fit_placement


def _chest(scale=1.0, seed=0):
    patient = Patient.draw(np.random.default_rng(seed))
    return Chest(patient, Placement(0.7, scale, 0.0, 0.0, z_apex=0.0, height=250.0))


def test_patient_draw_is_deterministic():
    assert Patient.draw(np.random.default_rng(5)) == Patient.draw(np.random.default_rng(5))
    assert Patient.draw(np.random.default_rng(5)) != Patient.draw(np.random.default_rng(6))


def test_two_lungs_beside_the_mediastinum_at_mid_chest():
    chest = _chest()
    z = chest.z_of(0.5)
    x = np.linspace(-160, 160, 321)
    inside = chest.lung_sdf(x, np.zeros_like(x) + 20.0, np.full_like(x, z)) < 0
    assert inside[x < -40].any() and inside[x > 40].any()
    assert not inside[np.abs(x - 4) < 8].any()  # mediastinum
    assert not inside[np.abs(x) > 150].any()  # chest wall


def test_no_lung_above_the_apex_or_below_the_diaphragm():
    chest = _chest()
    X, Y = np.meshgrid(np.linspace(-150, 150, 61), np.linspace(-100, 110, 43))
    for z in (chest.z_of(-0.05), chest.z_of(1.02)):
        assert (chest.lung_sdf(X, Y, np.full_like(X, z)) > 0).all()
    assert (chest.lung_sdf(X, Y, np.full_like(X, chest.z_of(0.6))) < 0).mean() > 0.25


def test_body_contains_muscle_contains_cage():
    chest = _chest()
    X, Y = np.meshgrid(np.linspace(-200, 200, 81), np.linspace(-200, 200, 81))
    z = np.full_like(X, chest.z_of(0.5))
    body, muscle, cage = chest.body_sdf(X, Y, z) < 0, chest.muscle_sdf(X, Y, z) < 0, chest.cage_sdf(X, Y, z) < 0
    assert (cage <= muscle).all() and (muscle <= body).all() and cage.any()


def test_fit_brings_nodule_points_into_the_lungs():
    rng = np.random.default_rng(0)
    patient = Patient.draw(rng)
    zvals = np.arange(0.0, 300.0, 2.5)
    start = default_placement(0.7, zvals, rng)
    # points near the lateral wall and the apex of a larger patient
    points = np.array([[-150.0, 10.0, 200.0], [150.0, 0.0, 150.0], [-60.0, 20.0, start.z_apex + 5.0]])

    def inside(p):
        chest = Chest(patient, p)
        return (chest.lung_sdf(points[:, 0] - p.center_x, points[:, 1] - p.center_y, points[:, 2]) < 0).mean()

    fitted = fit_placement(patient, start, points, zvals)
    assert inside(fitted) > inside(start)
    assert fitted.z_apex > points[:, 2].max()
