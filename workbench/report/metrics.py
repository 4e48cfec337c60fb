"""One report metric: a value with a direction, healthy/warning/critical thresholds and a score.

A metric is **higher-is-worse** (OT distance, IB KL, diffusion energy, H0 persistence),
**lower-is-worse** (topology coherence) or **two-sided** (attention entropy: both near-one-hot
and near-uniform attention are bad). With ``healthy = (lo, hi)``, ``warning`` ``w`` and
``critical`` ``c`` (for higher-is-worse ``w ≤ c``, for lower-is-worse ``w ≥ c``; for two-sided
both are pairs ``(low, high)`` with ``c_low ≤ w_low ≤ w_high ≤ c_high``, and each side follows
the one-sided rules below: the low side as lower-is-worse, the high side as higher-is-worse):

* ``is_critical``: ``v > c`` (higher-is-worse) or ``v < c`` (lower-is-worse);
* ``is_warning``: past ``w`` but not critical;
* ``status``: "CRITICAL", "WARNING", else "OK" (upstream compared every metric as
  higher-is-worse, so coherence and entropy were "CRITICAL" for almost every input,
  docs/upstream.md#report);
* ``is_healthy``: ``lo ≤ v ≤ hi`` (upstream's definition);
* ``normalized = clip((v − lo)/(hi − lo), 0, 1)`` (0.5 when ``hi ≤ lo``; upstream's definition);
* ``score`` ∈ [0, 1], continuous and monotone in ``v``: 1 while ``v`` is on the good side of the
  *bad-side bound* ``b`` (the healthy range's bad end, moved to ``w`` when the warning threshold
  lies inside the healthy range), then linear down to 0 at ``c``:
  higher-is-worse ``score = clip((c − v)/(c − b), 0, 1)``, lower-is-worse
  ``score = clip((v − c)/(b − c), 0, 1)`` (a step at ``b = c``). Values beyond the good end of
  the healthy range keep score 1 (the direction says they are not worse).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from workbench.errors import ConfigurationError

__all__ = ["HIGHER_IS_WORSE", "LOWER_IS_WORSE", "TWO_SIDED", "DIRECTIONS", "MetricSpec", "MetricValue"]

HIGHER_IS_WORSE = "higher_is_worse"
LOWER_IS_WORSE = "lower_is_worse"
TWO_SIDED = "two_sided"
DIRECTIONS = (HIGHER_IS_WORSE, LOWER_IS_WORSE, TWO_SIDED)


def _pair(name: str, v) -> tuple[float, float]:
    try:
        a, b = v
    except (TypeError, ValueError):
        raise ConfigurationError(f"{name}: a two-sided metric expects a (low, high) pair, got {v!r}") from None
    return _finite(f"{name}[0]", a), _finite(f"{name}[1]", b)


def _one_sided_score(v: float, b: float, c: float, higher_is_worse: bool) -> float:
    """1 on the good side of ``b``, linear down to 0 at ``c`` (a step when ``b = c``)."""
    if higher_is_worse:
        if v <= b:
            return 1.0
        return 0.0 if c <= b else min(1.0, max(0.0, (c - v) / (c - b)))
    if v >= b:
        return 1.0
    return 0.0 if c >= b else min(1.0, max(0.0, (v - c) / (b - c)))


def _finite(name: str, v) -> float:
    try:
        f = float(v)
    except (TypeError, ValueError):
        raise ConfigurationError(f"{name}: expected a finite number, got {v!r}") from None
    if not math.isfinite(f):
        raise ConfigurationError(f"{name}: expected a finite number, got {v!r}")
    return f


@dataclass(frozen=True)
class MetricSpec:
    """Thresholds of one metric in one profile (see the module docstring for their meaning).

    ``name``; ``direction`` "higher_is_worse", "lower_is_worse" or "two_sided"; ``healthy (lo, hi)``;
    ``warning``; ``critical`` (pairs ``(low, high)`` for two-sided); ``description`` (what the
    value is, with its unit).
    """

    name: str
    direction: str
    healthy: tuple
    warning: float | tuple
    critical: float | tuple
    description: str = ""

    def __post_init__(self):
        if self.direction not in DIRECTIONS:
            raise ConfigurationError(f"direction: expected one of {DIRECTIONS}, got {self.direction!r}")
        try:
            lo, hi = self.healthy
        except (TypeError, ValueError):
            raise ConfigurationError(f"healthy: expected a (low, high) pair, got {self.healthy!r}") from None
        lo, hi = _finite("healthy[0]", lo), _finite("healthy[1]", hi)
        if lo > hi:
            raise ConfigurationError(f"healthy: expected low <= high, got {self.healthy!r}")
        if self.direction == TWO_SIDED:
            w, c = _pair("warning", self.warning), _pair("critical", self.critical)
            if not c[0] <= w[0] <= w[1] <= c[1]:
                raise ConfigurationError(f"warning, critical: two-sided needs critical low <= warning low <= warning "
                                         f"high <= critical high, got warning {w}, critical {c}")
            object.__setattr__(self, "healthy", (lo, hi))
            object.__setattr__(self, "warning", w)
            object.__setattr__(self, "critical", c)
            return
        w, c = _finite("warning", self.warning), _finite("critical", self.critical)
        if self.direction == HIGHER_IS_WORSE and w > c:
            raise ConfigurationError(f"warning, critical: higher-is-worse needs warning <= critical, got {w} > {c}")
        if self.direction == LOWER_IS_WORSE and w < c:
            raise ConfigurationError(f"warning, critical: lower-is-worse needs warning >= critical, got {w} < {c}")
        object.__setattr__(self, "healthy", (lo, hi))
        object.__setattr__(self, "warning", w)
        object.__setattr__(self, "critical", c)

    @property
    def bad_bound(self) -> float | tuple:
        """Where the score starts to fall: the healthy range's bad end, or ``warning`` if nearer
        (a ``(low, high)`` pair for two-sided metrics)."""
        lo, hi = self.healthy
        if self.direction == TWO_SIDED:
            return max(lo, self.warning[0]), min(hi, self.warning[1])
        if self.direction == HIGHER_IS_WORSE:
            return min(hi, self.warning)
        return max(lo, self.warning)

    def evaluate(self, value) -> "MetricValue":
        """The :class:`MetricValue` of ``value`` under these thresholds."""
        return MetricValue(self.name, _finite(f"{self.name} value", value), self.direction, self.healthy,
                           self.warning, self.critical, self.description)


@dataclass(frozen=True)
class MetricValue:
    """A metric's value evaluated against its thresholds (``status``, ``score`` and the flags are derived).

    Fields: ``name``, ``value``, ``direction``, ``healthy (lo, hi)``, ``warning``, ``critical``,
    ``description``. Derived: ``status`` ("OK"/"WARNING"/"CRITICAL"), ``score`` ∈ [0, 1],
    ``normalized``, ``is_healthy``, ``is_warning``, ``is_critical``.
    """

    name: str
    value: float
    direction: str
    healthy: tuple
    warning: float | tuple
    critical: float | tuple
    description: str = ""

    def __post_init__(self):
        spec = MetricSpec(self.name, self.direction, self.healthy, self.warning, self.critical)
        object.__setattr__(self, "value", _finite(f"{self.name} value", self.value))
        object.__setattr__(self, "healthy", spec.healthy)
        object.__setattr__(self, "warning", spec.warning)
        object.__setattr__(self, "critical", spec.critical)

    @classmethod
    def from_thresholds(cls, name: str, value: float, min_expected: float, max_expected: float, warning: float,
                        critical: float, direction: str | None = None, description: str = "") -> "MetricValue":
        """Upstream's constructor ``(value, min_expected, max_expected, warning, critical)``.

        ``direction`` defaults to the metric's own (:data:`workbench.report.profiles.DIRECTION_OF`),
        higher-is-worse for unknown names.
        """
        if direction is None:
            from workbench.report.profiles import DIRECTION_OF

            direction = DIRECTION_OF.get(name, HIGHER_IS_WORSE)
            if direction == TWO_SIDED and not isinstance(warning, (tuple, list)):
                direction = LOWER_IS_WORSE  # upstream's scalar thresholds are one-sided (entropy: low is bad)
        return cls(name, value, direction, (min_expected, max_expected), warning, critical, description)

    @property
    def higher_is_worse(self) -> bool:
        return self.direction == HIGHER_IS_WORSE

    @property
    def two_sided(self) -> bool:
        return self.direction == TWO_SIDED

    @property
    def is_critical(self) -> bool:
        if self.two_sided:
            return self.value < self.critical[0] or self.value > self.critical[1]
        return self.value > self.critical if self.higher_is_worse else self.value < self.critical

    @property
    def is_warning(self) -> bool:
        if self.two_sided:
            past = self.value < self.warning[0] or self.value > self.warning[1]
        else:
            past = self.value > self.warning if self.higher_is_worse else self.value < self.warning
        return past and not self.is_critical

    @property
    def is_healthy(self) -> bool:
        lo, hi = self.healthy
        return lo <= self.value <= hi

    @property
    def status(self) -> str:
        if self.is_critical:
            return "CRITICAL"
        if self.is_warning:
            return "WARNING"
        return "OK"

    @property
    def normalized(self) -> float:
        lo, hi = self.healthy
        if hi <= lo:
            return 0.5
        return min(1.0, max(0.0, (self.value - lo) / (hi - lo)))

    @property
    def score(self) -> float:
        b = MetricSpec(self.name, self.direction, self.healthy, self.warning, self.critical).bad_bound
        c, v = self.critical, self.value
        if self.two_sided:
            return min(_one_sided_score(v, b[0], c[0], False), _one_sided_score(v, b[1], c[1], True))
        return _one_sided_score(v, b, c, self.higher_is_worse)

    def to_dict(self) -> dict:
        """Plain data (JSON-ready): the fields and the derived values."""
        return {
            "name": self.name, "value": self.value, "direction": self.direction,
            "healthy": [self.healthy[0], self.healthy[1]],
            "warning": list(self.warning) if self.two_sided else self.warning,
            "critical": list(self.critical) if self.two_sided else self.critical,
            "status": self.status, "score": self.score, "normalized": self.normalized,
            "is_healthy": self.is_healthy, "is_warning": self.is_warning, "is_critical": self.is_critical,
            "description": self.description,
        }

    @classmethod
    def from_dict(cls, d: dict) -> "MetricValue":
        """Inverse of :meth:`to_dict` (derived entries are recomputed, not read)."""
        try:
            pair = d["direction"] == TWO_SIDED
            return cls(d["name"], d["value"], d["direction"], tuple(d["healthy"]),
                       tuple(d["warning"]) if pair else d["warning"], tuple(d["critical"]) if pair else d["critical"],
                       d.get("description", ""))
        except KeyError as exc:
            raise ConfigurationError(f"metric: missing entry {exc.args[0]!r} in {sorted(d)}") from None
