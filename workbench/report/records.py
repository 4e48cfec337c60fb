"""The report's plain-data records: :class:`Recommendation` and :class:`Report`, with JSON export.

Everything is a dataclass of numbers, strings, lists and dicts (no arrays, no plotting), so
``Report.from_json(r.to_json()) == r``.
"""
from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field

import numpy as np

from workbench.errors import ConfigurationError
from workbench.report.metrics import MetricValue

__all__ = ["CHOICES", "Recommendation", "Report", "plain"]

#: The four recommendations, in the order the rules try them (Standard last, the default).
CHOICES = ("Sparse", "Geometric", "Diffusion", "Standard")


def plain(x):
    """``x`` with NumPy scalars/arrays and tuples turned into Python numbers and lists (JSON-ready).

    Non-finite floats become None (JSON has no NaN).
    """
    if isinstance(x, dict):
        return {str(k): plain(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [plain(v) for v in x]
    if isinstance(x, np.ndarray):
        return [plain(v) for v in x.tolist()]
    if isinstance(x, (bool, np.bool_)):
        return bool(x)
    if isinstance(x, (int, np.integer)):
        return int(x)
    if isinstance(x, (float, np.floating)):
        f = float(x)
        return f if math.isfinite(f) else None
    return x


@dataclass(frozen=True)
class Recommendation:
    """Which attention suits the keys, why, and how hot.

    ``choice`` one of "Standard", "Sparse", "Geometric", "Diffusion"; ``mechanism`` the registry
    name to build (``workbench.make(mechanism, **params)``); ``params`` suggested parameters;
    ``rule`` the rule that fired (its condition in words and symbols); ``numbers`` the values the
    rules looked at (features, thresholds); ``temperature_advice`` one sentence;
    ``suggested_temperature`` the logit temperature that brings the normalised attention entropy
    to 0.5 (None when not computed); ``explanation`` the reasoning in plain words; ``notes``
    caveats (e.g. a fallback mechanism); ``calibration`` how ``params`` were fitted to the keys
    (:meth:`workbench.calibration.Calibration.describe`); ``fitted`` that fit's
    :class:`~workbench.calibration.Calibration` record (in memory only: not in :meth:`to_dict`, not
    compared; None when not calibrated or read back from JSON), so :func:`workbench.report.evaluate`
    reuses it rather than calibrating the recommended mechanism again.
    """

    choice: str
    mechanism: str
    rule: str
    numbers: dict = field(default_factory=dict)
    temperature_advice: str = ""
    explanation: str = ""
    params: dict = field(default_factory=dict)
    suggested_temperature: float | None = None
    notes: tuple = ()
    calibration: str = ""
    fitted: object = field(default=None, compare=False, repr=False)

    def __post_init__(self):
        if self.choice not in CHOICES:
            raise ConfigurationError(f"choice: expected one of {CHOICES}, got {self.choice!r}")
        object.__setattr__(self, "numbers", plain(self.numbers))
        object.__setattr__(self, "params", plain(self.params))
        object.__setattr__(self, "notes", tuple(self.notes))
        if self.suggested_temperature is not None:
            object.__setattr__(self, "suggested_temperature", float(self.suggested_temperature))

    def to_dict(self) -> dict:
        d = asdict(self)
        del d["fitted"]  # the record of the fit stays in memory; ``calibration`` describes it
        d["notes"] = list(self.notes)
        return plain(d)

    @classmethod
    def from_dict(cls, d: dict) -> "Recommendation":
        try:
            return cls(d["choice"], d["mechanism"], d["rule"], d.get("numbers", {}), d.get("temperature_advice", ""),
                       d.get("explanation", ""), d.get("params", {}), d.get("suggested_temperature"),
                       tuple(d.get("notes", ())), d.get("calibration", ""))
        except KeyError as exc:
            raise ConfigurationError(f"recommendation: missing entry {exc.args[0]!r} in {sorted(d)}") from None


@dataclass(frozen=True)
class Report:
    """The unified report: metrics, health score and recommendation for one key set (and queries).

    ``metrics`` list of :class:`MetricValue` (order of :data:`workbench.report.profiles.METRIC_NAMES`,
    IB KL left out when no bottleneck statistics were given); ``health_score`` the mean metric
    score in [0, 1] (1.0 without metrics); ``recommendation``; ``profile`` "default" or
    "compat"; ``n_keys``, ``dim``, ``n_queries``; ``values`` upstream's raw report fields
    (``ot_mean_distance``, ``topology_coherence``, ``h0_death_sum``, ``ib_kl``,
    ``diffusion_energy``, ``attention_entropy``); ``features`` the structure features;
    ``settings`` the options used (k, seed, persistence method, affinity σ, the sampling, …);
    ``errors`` each metric's standard error over the samples it was measured on (empty when
    every key was measured).
    """

    metrics: list
    health_score: float
    recommendation: Recommendation
    profile: str = "default"
    n_keys: int = 0
    dim: int = 0
    n_queries: int = 0
    values: dict = field(default_factory=dict)
    features: dict = field(default_factory=dict)
    settings: dict = field(default_factory=dict)
    errors: dict = field(default_factory=dict)

    def __post_init__(self):
        object.__setattr__(self, "metrics", list(self.metrics))
        object.__setattr__(self, "health_score", float(self.health_score))
        for name in ("values", "features", "settings", "errors"):
            object.__setattr__(self, name, plain(getattr(self, name)))

    # -- queries -------------------------------------------------------------------------------
    def metric(self, name: str) -> MetricValue:
        """The metric called ``name`` (ConfigurationError if the report has none)."""
        for m in self.metrics:
            if m.name == name:
                return m
        raise ConfigurationError(f"name: no metric {name!r} in this report; has {[m.name for m in self.metrics]}")

    def warnings(self) -> list:
        """Metrics whose status is WARNING."""
        return [m for m in self.metrics if m.is_warning]

    def criticals(self) -> list:
        """Metrics whose status is CRITICAL."""
        return [m for m in self.metrics if m.is_critical]

    @property
    def is_healthy(self) -> bool:
        """``health_score > 0.7`` (upstream's rule)."""
        return self.health_score > 0.7

    @classmethod
    def empty(cls, profile: str = "default") -> "Report":
        """The report of no keys: no metrics, health 1, recommendation Standard (upstream's ``Stable``)."""
        rec = Recommendation("Standard", "scaled_dot_product", "no keys: nothing to measure",
                             temperature_advice="keep the temperature (no attention to assess)",
                             explanation="There are no keys, so plain scaled dot-product attention is kept.")
        return cls([], 1.0, rec, profile)

    # -- export --------------------------------------------------------------------------------
    def to_dict(self) -> dict:
        """The whole report as plain data (metrics with their derived status and score)."""
        return {
            "profile": self.profile, "n_keys": self.n_keys, "dim": self.dim, "n_queries": self.n_queries,
            "health_score": self.health_score, "is_healthy": self.is_healthy,
            "metrics": [m.to_dict() for m in self.metrics],
            "recommendation": self.recommendation.to_dict(),
            "values": self.values, "features": self.features, "settings": self.settings,
            "errors": self.errors,
        }

    def to_json(self, indent: int | None = 2) -> str:
        """:meth:`to_dict` as a JSON string."""
        return json.dumps(self.to_dict(), indent=indent, allow_nan=False)

    @classmethod
    def from_dict(cls, d: dict) -> "Report":
        """Inverse of :meth:`to_dict`."""
        try:
            return cls([MetricValue.from_dict(m) for m in d["metrics"]], d["health_score"],
                       Recommendation.from_dict(d["recommendation"]), d.get("profile", "default"),
                       d.get("n_keys", 0), d.get("dim", 0), d.get("n_queries", 0), d.get("values", {}),
                       d.get("features", {}), d.get("settings", {}), d.get("errors", {}))
        except KeyError as exc:
            raise ConfigurationError(f"report: missing entry {exc.args[0]!r} in {sorted(d)}") from None

    @classmethod
    def from_json(cls, text: str) -> "Report":
        """Inverse of :meth:`to_json`."""
        try:
            return cls.from_dict(json.loads(text))
        except json.JSONDecodeError as exc:
            raise ConfigurationError(f"text: expected a report in JSON, got invalid JSON ({exc})") from None
