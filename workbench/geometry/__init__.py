"""Riemannian geometry as checked, vectorised NumPy functions (geoopt style: thin wrappers over the
pure maths of :mod:`kernels.geometry`, which the NumPy references compute with too).

* :mod:`~workbench.geometry.poincare` — the Poincaré ball of curvature ``−c``;
* :mod:`~workbench.geometry.lorentz` — the hyperboloid ``⟨x,x⟩_L = −1/c`` (time coordinate first);
* :mod:`~workbench.geometry.sphere` — the sphere of radius ``1/√c`` embedded in ``R^d``;
* :mod:`~workbench.geometry.stereographic` — the κ-stereographic model, one curvature ``κ``
  covering hyperbolic (``κ < 0``), flat (``κ = 0``) and spherical (``κ > 0``) space.

Every function is batched over leading dimensions (the last axis is the vector), keeps float32 /
float64, and gives finite results for finite inputs or raises a :mod:`workbench.errors` error.
"""
from workbench.geometry import lorentz, poincare, sphere, stereographic

__all__ = ["poincare", "lorentz", "sphere", "stereographic"]
