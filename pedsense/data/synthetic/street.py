"""The street of the synthetic demo set in metres, and the pinhole dash camera that films it.

``X`` is metres to the right of the road's centre line, ``Z`` metres ahead of the camera. The
simulation (who walks where) and the drawing both work in these coordinates.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

PERSON_HEIGHT_M = 1.7
Z_NEAR, Z_FAR = 2.0, 90.0  # metres: ground drawn from just under the camera to the horizon


@dataclass(frozen=True)
class Street:
    """The street in metres and the camera that films it (its image is ``width`` x ``height``)."""

    width: int
    height: int
    focal: float  # pixels
    horizon: float  # image y of the horizon
    centre_x: float  # image x of the vanishing point
    camera_height: float  # metres above the ground
    camera_x: float  # metres right of the road's centre line (the ego car is in the right lane)
    road_half: float  # metres from the centre line to each curb
    sidewalk: float  # sidewalk width in metres
    crosswalk: tuple[float, float]  # Z range of the zebra crossing, metres

    def project(self, x: float, z: float, up: float = 0.0) -> tuple[float, float]:
        """Image (x, y) of the point ``up`` metres above the ground at (``x``, ``z``)."""
        return (self.centre_x + self.focal * (x - self.camera_x) / z,
                self.horizon + self.focal * (self.camera_height - up) / z)

    def figure_height(self, z: float, scale: float = 1.0) -> float:
        """Height in pixels of a person ``scale`` x 1.7 m tall standing ``z`` metres ahead."""
        return self.focal * PERSON_HEIGHT_M * scale / z

    def on_road(self, x: float) -> bool:
        """True while the feet are on the asphalt: JAAD's ``cross="crossing"``."""
        return -self.road_half < x < self.road_half

    def curb_x(self, side: int) -> float:
        """``X`` of someone waiting at the curb of side ``side`` (+1 right, -1 left), still off the road."""
        return side * (self.road_half + 0.2)

    def lane_x(self, side: int, fraction: float) -> float:
        """``X`` of a path along the sidewalk of ``side``; ``fraction`` 0 = curb .. 1 = building."""
        return side * (self.road_half + 0.35 + fraction * (self.sidewalk - 0.7))

    def visible_z(self, x: float) -> float:
        """The nearest ``Z`` at which a point at ``x`` is still inside the frame horizontally."""
        half_span = max(self.centre_x, self.width - self.centre_x) - 2
        return max(Z_NEAR, abs(x - self.camera_x) * self.focal / half_span)


def make_street(width: int, height: int, rng: np.random.Generator) -> Street:
    """A street with slightly varied camera, road width and crosswalk distance."""
    z0 = float(rng.uniform(10.0, 13.0))
    return Street(width=width, height=height, focal=0.72 * width, horizon=height * float(rng.uniform(0.36, 0.40)),
                  centre_x=width * float(rng.uniform(0.48, 0.52)), camera_height=1.3,
                  camera_x=float(rng.uniform(0.5, 1.5)), road_half=float(rng.uniform(3.0, 3.4)),
                  sidewalk=float(rng.uniform(2.6, 3.4)), crosswalk=(z0, z0 + 3.0))
