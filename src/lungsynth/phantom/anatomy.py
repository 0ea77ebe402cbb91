"""Procedural chest anatomy: body, chest wall, ribs, spine, mediastinum, lungs, abdomen.

Chest coordinates (mm): ``X`` to the patient's left (LPS x, image columns), ``Y`` posterior
(LPS y, image rows), measured from the centre of the rib cage, and the world ``z`` of the
slices. Along z the anatomy is parametrised by ``t = (z_apex - z) / height``: 0 at the lung
apex, 1 at the lowest point of the lungs (the posterior recesses), negative in the neck and
above 1 in the abdomen.

Every structure is a signed distance (mm, negative inside) that accepts broadcastable
``X, Y, z`` arrays, so the same functions shape the slices (coarse grid, upsampled) and test
single points (fitting the lungs around the real nodules, sampling vessel trees).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from .shapes import profile, smooth_min, smoothstep, superellipse_radius

BIG = 1e4  # "far outside" for signed distances

# Large mediastinal tubes at scale 1: (X, Y, t) way points and radii (mm).
# X: patient left +, Y: posterior +, both from the cage centre; t: normalised height.
_TUBES_S1 = {
    "aorta": ([(-5, -30, 0.62), (-8, -32, 0.36), (-3, -18, 0.25), (14, 8, 0.22), (24, 50, 0.28),
               (25, 66, 0.45), (20, 72, 0.75), (12, 74, 1.05), (5, 70, 1.6)],
              [14, 15, 14, 13, 12, 12, 11.5, 11, 10]),
    "pulmonary_trunk": ([(20, -42, 0.6), (20, -18, 0.43)], [13, 13]),
    "right_pa": ([(20, -18, 0.43), (-8, 0, 0.43), (-38, 18, 0.44)], [11, 10.5, 9]),
    "left_pa": ([(20, -18, 0.43), (38, 8, 0.39), (46, 22, 0.41)], [10, 9.5, 8.5]),
    "svc": ([(-26, -20, -0.05), (-25, -16, 0.3), (-20, -22, 0.55)], [8.5, 10, 10]),
    "brachiocephalic": ([(-5, -22, 0.26), (-14, -12, 0.0), (-22, -5, -0.3)], [6.5, 6, 6]),
    "left_subclavian": ([(10, -2, 0.23), (22, 8, 0.0), (30, 12, -0.3)], [5, 5, 5]),
    "right_veins": ([(-40, 12, 0.52), (-14, 24, 0.6)], [7, 8]),
    "left_veins": ([(42, 18, 0.52), (26, 24, 0.6)], [7, 8]),
    "esophagus": ([(-2, 56, -0.5), (2, 57, 0.3), (9, 60, 0.8), (24, 45, 1.15)], [7, 7, 7.5, 8]),
    "ivc": ([(-16, 10, 0.78), (-22, 38, 1.0), (-22, 48, 1.9)], [12, 12, 11]),
}
# airways: lumen radius; the wall is added on top (wall = 0.15 r + 1 mm)
_AIRWAYS_S1 = {
    "trachea": ([(0, 36, -0.6), (0, 36, 0.0), (2, 40, 0.30)], [9, 9, 8.5]),
    "right_main_bronchus": ([(2, 40, 0.30), (-22, 42, 0.36), (-36, 45, 0.41)], [7, 6.5, 5.5]),
    "left_main_bronchus": ([(2, 40, 0.30), (22, 44, 0.35), (40, 48, 0.42)], [6.5, 6, 5]),
}
# 3D ellipsoids: centre (X, Y, t), half axes (mm, mm, mm), rotation about z (degrees; the
# heart's long axis points to the left front)
_ELLIPSOIDS_S1 = {
    "heart": ((28, -22, 0.8), (66, 44, 64), -40.0),
    "left_atrium": ((6, 20, 0.63), (32, 17, 26), 0.0),
}
# abdominal organs below the diaphragm: centre (X, Y, mm below the dome top of their side),
# half axes (mm), rotation about z (degrees), HU; the side's dome is "right" or "left"
_ABDOMEN_S1 = {
    "liver": ((-38, -6, 80, "right"), (105, 85, 85), 10.0, 58.0),
    "spleen": ((80, 45, 50, "left"), (28, 45, 48), 35.0, 48.0),
    "stomach": ((48, -22, 55, "left"), (45, 36, 55), -20.0, 32.0),
    "right_kidney": ((-62, 55, 150, "right"), (30, 24, 55), -25.0, 33.0),
    "left_kidney": ((64, 55, 135, "left"), (30, 24, 55), 25.0, 33.0),
}


@dataclass(frozen=True)
class Patient:
    """The random, scan-independent traits of one phantom patient (drawn once per seed)."""

    fat_mm: float          # subcutaneous fat thickness
    dome_right: float      # diaphragm dome heights above the lung base, fraction of height
    dome_left: float
    apex_radius: float     # curvature radius of the lung apices (mm, scale 1)
    heart_shift: tuple[float, float]
    heart_size: float
    tube_jitter: tuple[tuple[float, ...], ...]   # per tube: dX, dY, radius factor
    rib_drop: float        # extra rib slope factor
    vertebra_phase: float  # offset of the vertebral levels (fraction of one level)
    lung_hu: float         # mean parenchyma HU
    gravity_hu: float      # extra HU at the posterior (dependent) lung
    fat_hu: float
    muscle_hu: float
    noise_std: float       # scanner noise (HU)
    noise_sigma: float     # noise correlation (gaussian sigma, pixels)

    @classmethod
    def draw(cls, rng: np.random.Generator) -> "Patient":
        n_tubes = len(_TUBES_S1) + len(_AIRWAYS_S1)
        return cls(
            fat_mm=float(rng.uniform(6, 28)),
            dome_right=float(rng.uniform(0.24, 0.32)),
            dome_left=float(rng.uniform(0.18, 0.25)),
            apex_radius=float(rng.uniform(14, 20)),
            heart_shift=(float(rng.normal(0, 5)), float(rng.normal(0, 4))),
            heart_size=float(rng.uniform(0.9, 1.1)),
            tube_jitter=tuple((float(rng.normal(0, 2.5)), float(rng.normal(0, 2.5)), float(rng.uniform(0.9, 1.1)))
                              for _ in range(n_tubes)),
            rib_drop=float(rng.uniform(0.85, 1.15)),
            vertebra_phase=float(rng.uniform(0, 1)),
            lung_hu=float(rng.uniform(-880, -840)),
            gravity_hu=float(rng.uniform(30, 70)),
            fat_hu=float(rng.uniform(-110, -85)),
            muscle_hu=float(rng.uniform(35, 55)),
            noise_std=float(rng.uniform(15, 30)),
            noise_sigma=float(rng.uniform(0.8, 1.4)),
        )


@dataclass(frozen=True)
class Placement:
    """Where the chest sits in the scan: the part fitted to the real nodules."""

    pixel_spacing: float
    scale: float       # in-plane size relative to an average adult
    center_x: float    # cage centre left of the image centre, mm
    center_y: float    # cage centre below (posterior of) the image centre, mm
    z_apex: float      # world z of the lung apex
    height: float      # apex to the lowest lung point, mm
    width: float = 1.0  # extra lateral size of the rib cage (broad or narrow chests)

    def chest_x(self, col):
        """Chest X (mm) of (continuous) image column indices of a 512-wide image."""
        return (np.asarray(col, np.float32) - 255.5) * self.pixel_spacing - self.center_x

    def chest_y(self, row):
        """Chest Y (mm) of (continuous) image row indices of a 512-high image."""
        return (np.asarray(row, np.float32) - 255.5) * self.pixel_spacing - self.center_y


class Chest:
    """One phantom chest: a :class:`Patient` placed by a :class:`Placement`."""

    def __init__(self, patient: Patient, placement: Placement):
        self.patient = patient
        self.placement = placement
        s = placement.scale
        self.s = s
        self.ps = placement.pixel_spacing
        self.z_apex = placement.z_apex
        self.height = placement.height
        jit = iter(patient.tube_jitter)

        def to_world(points, radii, kind_scale=1.0):
            dx, dy, rf = next(jit)
            pts = np.array([(s * x + dx * s, s * y + dy * s, self.z_of(t)) for x, y, t in points], float)
            return pts, np.asarray(radii, float) * s * rf * kind_scale

        self.tubes = {name: to_world(p, r) for name, (p, r) in _TUBES_S1.items()}
        self.airways = {name: to_world(p, r) for name, (p, r) in _AIRWAYS_S1.items()}
        hx, hy = patient.heart_shift
        self.ellipsoids = {}
        for name, ((x, y, t), (rx, ry, rz), angle) in _ELLIPSOIDS_S1.items():
            k = patient.heart_size if name == "heart" else 1.0
            self.ellipsoids[name] = (np.array([s * x + hx * s, s * y + hy * s, self.z_of(t)]),
                                     np.array([rx * s * k, ry * s * k, rz * s * k]), np.deg2rad(angle))

        z_base = self.z_apex - self.height
        self.dome_top = {"right": z_base + patient.dome_right * self.height,
                         "left": z_base + patient.dome_left * self.height}
        self.abdomen = {}
        for name, ((x, y, below, side), (rx, ry, rz), angle, hu) in _ABDOMEN_S1.items():
            self.abdomen[name] = (np.array([s * x, s * y, self.dome_top[side] - s * below]),
                                  np.array([rx * s, ry * s, rz * s]), np.deg2rad(angle), hu)

    # ---- z parametrisation -------------------------------------------------------------
    def t_of(self, z):
        return (self.z_apex - np.asarray(z, np.float32)) / self.height

    def z_of(self, t):
        return self.z_apex - t * self.height

    # ---- rib cage ----------------------------------------------------------------------
    def cage_axes(self, t):
        """Half axes of the rib cage (lateral, anterior, posterior) in mm at height ``t``."""
        s = self.s
        a = s * self.placement.width * 135 * profile(t, [-0.3, 0.0, 0.1, 0.25, 0.5, 0.8, 1.3],
                                                     [0.50, 0.56, 0.72, 0.86, 0.97, 1.0, 0.97])
        bf = s * 80 * profile(t, [-0.3, 0.0, 0.15, 0.4, 0.7, 1.3], [0.42, 0.48, 0.75, 0.92, 1.0, 1.0])
        bb = s * 95 * profile(t, [-0.3, 0.0, 0.15, 0.4, 1.3], [0.52, 0.60, 0.85, 1.0, 1.0])
        return a, bf, bb

    def polar(self, X, Y):
        return np.hypot(X, Y), np.arctan2(Y, X)

    def cage_radius(self, theta, t):
        a, bf, bb = self.cage_axes(t)
        return superellipse_radius(theta, a, bf, bb, 2.4)

    def cage_sdf(self, X, Y, z):
        rho, theta = self.polar(X, Y)
        return rho - self.cage_radius(theta, self.t_of(z))

    # ---- chest wall and body ---------------------------------------------------------------
    def body_axes(self, t, fat: bool = True):
        """Half axes (lateral, anterior, posterior) of the body outline (or, without the
        subcutaneous fat, of the muscle layer) at height ``t``, mm."""
        a, bf, bb = self.cage_axes(t)
        s = self.s
        f = self.patient.fat_mm if fat else 0.0
        shoulders = 40 * s * smoothstep(0.06, -0.15, t)
        pectoral = 9 * s * (1 - smoothstep(0.3, 0.75, t))
        return (a + 12 * s + 0.8 * f + shoulders,
                bf + (11 * s + pectoral) + f,
                bb + 36 * s + 0.6 * f)

    def _outline_sdf(self, X, Y, z, fat: bool):
        rho, theta = self.polar(X, Y)
        a, bf, bb = self.body_axes(self.t_of(z), fat)
        return rho - superellipse_radius(theta, a, bf, bb, 2.2, 3.2)

    def muscle_sdf(self, X, Y, z):
        return self._outline_sdf(X, Y, z, fat=False)

    def body_sdf(self, X, Y, z):
        return self._outline_sdf(X, Y, z, fat=True)

    # ---- spine -------------------------------------------------------------------------------
    def vertebra(self, t):
        """Centre Y and radius of the vertebral body at height ``t``."""
        _, _, bb = self.cage_axes(t)
        r = self.s * (13 + 6 * np.clip(t, -0.2, 1.4))
        return bb - 0.3 * r, r

    def vertebral_levels(self):
        """World z of the vertebral levels T1..T12 (and the discs between them)."""
        step = 1.05 * self.height / 11
        z1 = self.z_apex + 10 + (self.patient.vertebra_phase - 0.5) * 0.3 * step
        return z1, step

    # ---- mediastinum and lungs -------------------------------------------------------------
    def ellipsoid_sdf(self, name, X, Y, z):
        c, r, angle = self.ellipsoids[name] if name in self.ellipsoids else self.abdomen[name][:3]
        dx, dy = X - c[0], Y - c[1]
        u = dx * np.cos(angle) + dy * np.sin(angle)
        v = -dx * np.sin(angle) + dy * np.cos(angle)
        q = np.sqrt((u / r[0]) ** 2 + (v / r[1]) ** 2 + ((z - c[2]) / r[2]) ** 2)
        return (q - 1.0) * r.min()

    def mediastinum_band_sdf(self, X, Y, z):
        t = self.t_of(z)
        _, bf, bb = self.cage_axes(t)
        yn = np.where(Y < 0, Y / bf, Y / bb)
        half = profile(yn, [-1.0, -0.5, 0.0, 0.5, 1.0], [4.0, 7.0, 13.0, 19.0, 22.0])
        # the great vessels widen the upper and middle mediastinum
        great = 20.0 * smoothstep(0.05, 0.2, t) * smoothstep(0.6, 0.45, t) * np.exp(-((yn - 0.05) / 0.55) ** 2)
        return np.abs(X - 4 * self.s) - self.s * (half + great)

    def diaphragm_z(self, X, Y):
        """World z of the diaphragm surface under each lung, and its slope (for distances)."""
        z_base = self.z_apex - self.height
        best_z = np.full(np.broadcast(X, Y).shape, z_base, np.float32)
        best_g = np.zeros_like(best_z)
        for side, h in ((-1, self.patient.dome_right), (1, self.patient.dome_left)):
            a, bf, _ = self.cage_axes(0.9)
            xd, yd, rdx, rdy = side * 0.38 * a, -0.4 * bf, 0.62 * a, 1.0 * bf
            u = ((X - xd) / rdx) ** 2 + ((Y - yd) / rdy) ** 2
            root = np.sqrt(np.clip(1.0 - u, 0.0025, None))
            zd = z_base + h * self.height * np.where(u < 1, root, 0.0)
            g = h * self.height / root * np.sqrt(((X - xd) / rdx**2) ** 2 + ((Y - yd) / rdy**2) ** 2)
            g = np.where(u < 1, g, 0.0)
            take = zd > best_z
            best_z = np.where(take, zd, best_z)
            best_g = np.where(take, g, best_g)
        return best_z, best_g

    def apex_sdf(self, X, Y, z):
        """Distance above the lung apices (positive above): each apex is a rounded cone,
        ``depth(r) = sqrt(R^2 + (r / c)^2) - R`` below the top at distance ``r`` from its axis."""
        out = None
        a, _, bb = self.cage_axes(0.15)
        R, c = self.patient.apex_radius * self.s, 1.2
        for side in (-1, 1):
            xa, ya = side * 0.42 * a, 0.15 * bb
            r = np.hypot(X - xa, 0.8 * (Y - ya))
            root = np.sqrt(R * R + (r / c) ** 2)
            z_top = self.z_apex - (root - R)
            slope = (r / c**2) / root
            f = (z - z_top) / np.sqrt(1.0 + slope * slope)
            out = f if out is None else np.minimum(out, f)
        return out

    def below_diaphragm_sdf(self, X, Y, z):
        """Distance below the diaphragm surface (positive below, i.e. in the abdomen)."""
        zd, g = self.diaphragm_z(X, Y)
        return (zd - z) / np.sqrt(1.0 + g * g)

    def tube_sdf(self, pts, radii, X, Y, z):
        """Signed distance to a tube along the polyline ``pts`` (N, 3) with radii (N,)."""
        out = None
        for i in range(len(pts) - 1):
            a, b = pts[i], pts[i + 1]
            ab = b - a
            dx, dy, dz = X - a[0], Y - a[1], z - a[2]
            tt = np.clip((dx * ab[0] + dy * ab[1] + dz * ab[2]) / float(np.sum(ab * ab)), 0.0, 1.0)
            d = np.sqrt((dx - tt * ab[0]) ** 2 + (dy - tt * ab[1]) ** 2 + (dz - tt * ab[2]) ** 2)
            sd = d - (radii[i] + tt * (radii[i + 1] - radii[i]))
            out = sd if out is None else np.minimum(out, sd)
        return out

    def airway_wall(self, radii):
        """Wall thickness of the large airways (mm) for lumen radii."""
        return 0.15 * radii + 1.0 * self.s

    def envelope_sdf(self, X, Y, z, tube_sdf=None):
        """The mediastinum seen from the lungs: band, heart, great vessels, airways, spine.

        ``tube_sdf`` may pass a precomputed union of the tubes (the slice renderer culls
        them per bounding box); by default it is computed here.
        """
        if tube_sdf is None:
            tube_sdf = self.all_tubes_sdf(X, Y, z)
        yv, rv = self.vertebra(self.t_of(z))
        spine = np.hypot(X / 1.1, Y - yv) - rv
        heart = np.minimum(self.ellipsoid_sdf("heart", X, Y, z), self.ellipsoid_sdf("left_atrium", X, Y, z))
        organs = np.minimum(np.minimum(tube_sdf, spine), heart)
        env = smooth_min(self.mediastinum_band_sdf(X, Y, z), organs, 10.0 * self.s)
        return env - 2.5  # pleura and a thin fat layer

    def all_tubes_sdf(self, X, Y, z):
        """Union of the mediastinal tubes (vessels, oesophagus, airways with their walls)."""
        out = np.full(np.broadcast(X, Y, z).shape, BIG, np.float32)
        for pts, radii in self.tubes.values():
            out = np.minimum(out, self.tube_sdf(pts, radii, X, Y, z))
        for pts, radii in self.airways.values():
            out = np.minimum(out, self.tube_sdf(pts, radii + self.airway_wall(radii), X, Y, z))
        return out

    def lung_sdf(self, X, Y, z, tube_sdf=None):
        """Signed distance to the lungs (both): inside the cage, outside the mediastinum,
        below the apices and above the diaphragm."""
        d = np.maximum(self.cage_sdf(X, Y, z), -self.envelope_sdf(X, Y, z, tube_sdf))
        d = np.maximum(d, self.apex_sdf(X, Y, z))
        return np.maximum(d, self.below_diaphragm_sdf(X, Y, z))

    def lung_side(self, X):
        """-1 for the right lung (patient right = image left), +1 for the left lung."""
        return np.where(X < 4 * self.s, -1, 1)

    # ---- bones -------------------------------------------------------------------------------
    def rib_sdf(self, X, Y, z):
        """Ribs and costal cartilage: 12 per side, each descending from its vertebra around
        the cage. Returns (bone sdf, cartilage sdf), mm."""
        rho, theta = self.polar(X, Y)
        t = self.t_of(z)
        rc = self.cage_radius(theta, t)
        phi = np.arccos(np.clip(Y / np.maximum(rho, 1e-3), -1, 1)) / np.pi  # 0 back, 0.5 side, 1 front
        thick, height = 6.5 * self.s, 11.0 * self.s
        radial = ((rho - (rc + 1.5 + thick / 2)) / (thick / 2)) ** 2
        z1, step = self.vertebral_levels()
        bone = np.full(np.broadcast(X, Y, z).shape, BIG, np.float32)
        cart = bone.copy()
        phi_c = np.clip(phi, 0.0, 1.0)
        for k in range(1, 13):
            z_head = z1 - (k - 1) * step
            drop = self.patient.rib_drop * self.s * (32 + 5.5 * k)
            zr = z_head - drop * phi_c ** 1.5
            e = radial + ((z - zr) / (height / 2)) ** 2
            sd = (np.sqrt(e) - 1.0) * (thick / 2)
            end = {11: 0.55, 12: 0.42}.get(k, 0.80 if k <= 7 else 0.74)
            start = 0.07
            on = (phi >= start) & (phi <= end)
            bone = np.where(on, np.minimum(bone, sd), bone)
            if k <= 10:
                on_c = (phi > end) & (phi <= 0.95)
                cart = np.where(on_c, np.minimum(cart, sd + 0.5), cart)
        return bone, cart

    def spine_sdf(self, X, Y, z):
        """Vertebral bodies, arches, spinous and transverse processes. Returns
        (bone sdf, disc sdf, canal sdf), mm."""
        t = self.t_of(z)
        yv, rv = self.vertebra(t)
        body = np.hypot(X / 1.1, Y - yv) - rv
        z1, step = self.vertebral_levels()
        phase = ((z1 - z) / step + 0.5) % 1.0  # 0..1 within one level, 0.5 at mid-body
        disc_band = (phase < 0.1) | (phase > 0.9)
        s = self.s
        yc = yv + rv + 8 * s
        canal = np.hypot(X, Y - yc) - 7.5 * s
        arch_on = (phase > 0.12) & (phase < 0.97)
        arch = np.abs(np.hypot(X, Y - yc) - 10.5 * s) - 3.0 * s
        # spinous process: straight back from the arch
        sp_len = 24 * s
        dy = np.clip(Y - (yc + 10 * s), 0, sp_len)
        spinous = np.hypot(X, Y - (yc + 10 * s) - dy) - 4.0 * s
        transverse = None
        for side in (-1, 1):
            ax, ay = side * 8 * s, yc
            bx, by = side * 30 * s, yc + 3 * s
            d = _segment2(X, Y, ax, ay, bx, by) - 4.5 * s
            transverse = d if transverse is None else np.minimum(transverse, d)
        posterior = np.minimum(np.minimum(arch, spinous), transverse)
        posterior = np.where(arch_on, posterior, BIG)
        bone = np.where(disc_band, BIG, body)
        bone = np.minimum(bone, np.maximum(posterior, -canal))
        disc = np.where(disc_band, body, BIG)
        return bone, disc, canal

    def sternum_sdf(self, X, Y, z):
        """The sternum in front of the cage (wider manubrium at the top), mm."""
        t = self.t_of(z)
        _, bf, _ = self.cage_axes(t)
        s = self.s
        wide = 1.0 + 0.5 * smoothstep(0.2, 0.05, t)
        d = np.hypot(X / (15 * s * wide) * 6 * s, Y - (-bf - 7 * s)) - 6 * s
        on = (t > 0.03) & (t < 0.72)
        return np.where(on, d, BIG)

    def scapula_sdf(self, X, Y, z):
        """The shoulder blades: thin curved plates in the upper back muscles, mm."""
        rho, theta = self.polar(X, Y)
        t = self.t_of(z)
        rc = self.cage_radius(theta, t)
        phi = np.arccos(np.clip(Y / np.maximum(rho, 1e-3), -1, 1)) / np.pi
        d = np.abs(rho - (rc + 17 * self.s)) - 2.2 * self.s
        window = np.maximum(0.12 - phi, phi - 0.33) * 200.0
        d = np.maximum(d, window)
        on = (t > -0.15) & (t < 0.42)
        return np.where(on, d, BIG)


def _segment2(X, Y, ax, ay, bx, by):
    abx, aby = bx - ax, by - ay
    tt = np.clip(((X - ax) * abx + (Y - ay) * aby) / (abx * abx + aby * aby), 0, 1)
    return np.hypot(X - ax - tt * abx, Y - ay - tt * aby)


# ---- fitting the chest around the real nodules ---------------------------------------------

def default_placement(pixel_spacing: float, zvals: np.ndarray, rng: np.random.Generator) -> Placement:
    """An average placement for a scan: size follows the reconstruction field of view
    (small fields of view were chosen for small patients); the apex lies a little below the
    first slice and, on scans that cover about the chest only, the lung bases a little above
    the last one, as a chest CT is planned."""
    fov = 512 * pixel_spacing
    scale = float(np.clip(fov / 360.0, 0.78, 1.12) * rng.uniform(0.96, 1.04))
    size = 0.85 + 0.15 * scale
    nominal = float(rng.uniform(235, 275) * size)
    gap_top, gap_bottom = float(rng.uniform(5, 25)), float(rng.uniform(0, 15))
    z_apex = float(zvals[-1] - gap_top)
    span = float(zvals[-1] - zvals[0]) - gap_top - gap_bottom
    height = float(np.clip(span, 180.0, 300.0 * size)) if span < 320.0 * size else nominal
    return Placement(pixel_spacing, scale, 0.0, float(rng.uniform(-4, 10)), z_apex, height)


def fit_placement(patient: Patient, start: Placement, points: np.ndarray, zvals: np.ndarray,
                  groups: np.ndarray | None = None, max_per_group: int = 200) -> Placement:
    """Adjust size, centre and z extent so that the nodule points lie in the lungs.

    ``points`` (N, 3) are reader contour points as (X from the image centre, Y from the
    image centre, world z) in mm; ``groups`` (N,) says which annotation each point belongs
    to (every annotation counts equally, so a small nodule outside the lungs matters as much
    as a large one). A staged grid search (z extent, size and vertical centre, lateral
    centre, z again) maximises the mean fraction of each annotation inside the lungs (or
    within a voxel of them) and prefers small changes; nodules still outside get a lung
    pocket later (:func:`lungsynth.phantom.nodules.prepare_nodule`).
    """
    if len(points) == 0:
        return start
    groups = np.zeros(len(points), int) if groups is None else np.asarray(groups)
    keep = np.concatenate([idx[np.linspace(0, len(idx) - 1, min(len(idx), max_per_group)).astype(int)]
                           for idx in (np.flatnonzero(groups == g) for g in np.unique(groups))])
    points, groups = points[keep], np.unique(groups[keep], return_inverse=True)[1]
    counts = np.bincount(groups)
    z_top, z_bot = points[:, 2].max(), points[:, 2].min()
    z_apex = max(start.z_apex, z_top + 12.0)
    height = max(start.height - (z_apex - start.z_apex), z_apex - z_bot + 8.0)
    base = replace(start, z_apex=float(z_apex), height=float(height))

    def score(cand: Placement) -> float:
        chest = Chest(patient, cand)
        d = chest.lung_sdf(points[:, 0] - cand.center_x, points[:, 1] - cand.center_y, points[:, 2])
        inside = np.bincount(groups, weights=d < cand.pixel_spacing) / counts
        change = (2.0 * abs(cand.scale / start.scale - 1) + 0.002 * abs(cand.center_y - start.center_y)
                  + 0.003 * abs(cand.center_x) + 1.0 * abs(cand.width - 1) + 0.5 * abs(cand.height / base.height - 1)
                  + 0.001 * abs(cand.z_apex - base.z_apex))
        return float(inside.mean()) - 0.05 * change

    def z_stage(p: Placement) -> list[Placement]:
        return [replace(p, height=min(p.height * dh + dz, 1.15 * base.height), z_apex=p.z_apex + dz)
                for dh in (1.0, 1.06, 1.12) for dz in (0.0, 10.0, 20.0)]

    def xy_stage(p: Placement) -> list[Placement]:
        return [replace(p, scale=p.scale * ds, center_y=p.center_y + dy)
                for ds in (1.0, 1.05, 1.1, 1.16, 1.23, 1.3) for dy in (0.0, 8.0, -8.0, 16.0, -16.0)]

    def x_stage(p: Placement) -> list[Placement]:
        return [replace(p, center_x=p.center_x + dx, width=w) for w in (1.0, 1.06, 1.12, 0.94)
                for dx in (0.0, 6.0, -6.0, 12.0, -12.0, 20.0, -20.0)]

    best = base
    for stage in (z_stage, xy_stage, x_stage, z_stage):
        best = max(stage(best), key=score)  # max keeps the first (least changed) of equal scores
    return best
