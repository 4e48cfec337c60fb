"""Numba CPU kernels. Imported lazily by the dispatchers; compiled on first use, cached on disk."""
