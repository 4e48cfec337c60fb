"""One curvature-parameterised geometry, as pure NumPy functions (geoopt's ``stereographic/math.py`` split).

* :mod:`~kernels.geometry.stereographic` — the κ-stereographic model: hyperbolic / Poincaré ball
  (``κ = −c < 0``), Euclidean (``κ = 0``) and spherical (``κ > 0``) space in one set of formulas;
* :mod:`~kernels.geometry.lorentz` — the hyperboloid ``⟨x,x⟩_L = −1/c`` (time first) and the tangent
  chart at its origin;
* :mod:`~kernels.geometry.sphere` — the sphere of radius ``1/√c`` embedded in ``R^d``;
* :mod:`~kernels.geometry.numerics` — the dtype-dependent guards, in one place: the ball's boundary
  margin by dtype, the norm floor, clamped ``artanh``, ``arcosh(1 + δ)`` without cancellation.

The NumPy references (``kernels.reference``) compute with these functions; :mod:`workbench.geometry`
wraps them with argument checking (shapes, dtypes, curvature ranges, errors naming the argument).
Nothing here checks arguments or imports ``workbench``.
"""
from kernels.geometry import lorentz, numerics, sphere, stereographic
from kernels.geometry.numerics import EPS, MIN_NORM, eps

__all__ = ["stereographic", "lorentz", "sphere", "numerics", "EPS", "MIN_NORM", "eps"]
