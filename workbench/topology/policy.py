"""The three-mode attention policy (Stable / Cautious / Freeze) with hysteresis, a coherence refresh
period and a plottable history (docs/upstream.md#topology). It turns coherence values (from
:mod:`workbench.topology.coherence`, or any score in ``[0, 1]``) into modes.
"""
from __future__ import annotations

import enum
import math
from collections import deque
from typing import Callable, Iterable, NamedTuple

import numpy as np

from workbench import checks as C
from workbench.errors import ConfigurationError, DataError, NumericalError

__all__ = ["MODES", "Mode", "PolicyRecord", "AttentionPolicy", "mode_names"]

# -- the policy ---------------------------------------------------------------------------------------


class Mode(str, enum.Enum):
    """Attention mode chosen by the policy (a ``str``: ``Mode.STABLE == "stable"``)."""

    STABLE = "stable"
    CAUTIOUS = "cautious"
    FREEZE = "freeze"

    @property
    def code(self) -> int:
        """0 Stable, 1 Cautious, 2 Freeze (for plotting and arrays)."""
        return _CODES[self]


_CODES = {Mode.STABLE: 0, Mode.CAUTIOUS: 1, Mode.FREEZE: 2}
MODES: tuple[Mode, ...] = (Mode.STABLE, Mode.CAUTIOUS, Mode.FREEZE)


class PolicyRecord(NamedTuple):
    """One decision of the policy: the token ``step`` it was taken at, the coherence, the mode."""

    step: int
    coherence: float
    mode: Mode


def _integer(name, value, lo) -> int:
    return C.integer(name, value, minimum=lo)


class AttentionPolicy:
    """Three-mode attention policy with hysteresis and a coherence refresh period (docs/upstream.md#topology).

    Raw mode of a coherence ``c``: Stable if ``c ≥ stable_threshold``, Freeze if
    ``c ≤ freeze_threshold``, else Cautious. Hysteresis ``h`` against the current mode:
    Stable→Cautious only if ``c < stable − h``; Cautious→Stable only if ``c > stable + h``;
    Cautious→Freeze only if ``c < freeze − h``; Freeze→Cautious only if ``c > freeze + h``;
    otherwise the current mode stays. Stable↔Freeze jumps and staying in a mode take the raw mode
    at once (as upstream: from Stable ``c ≤ freeze`` freezes immediately, from Freeze
    ``c ≥ stable`` returns to Stable). Initial mode Stable.

    Token bookkeeping (:meth:`step`): the coherence is refreshed when the policy is stale (new
    or :meth:`mark_stale`) or ``update_period`` tokens have passed since the last refresh, so it
    is recomputed on tokens 0, P, 2P, … — every ``update_period`` tokens (upstream refreshes every
    ``update_period + 1`` calls, docs/upstream.md#topology). A token whose window is empty (``None``
    coherence) changes nothing and the refresh stays due.

    Attention width: Stable ``base``, Cautious ``max(1, ⌊base·cautious_width_factor⌋)``, Freeze 0;
    sparsity factor 1, ``cautious_sparsity_factor``, ``inf``. Updates/writes are allowed unless
    frozen. ``history`` keeps the last ``history_size`` decisions (default 1024; upstream keeps
    16) as :class:`PolicyRecord` entries ``(step, coherence, mode)``; :meth:`history_arrays` gives
    them as arrays for plotting.
    """

    def __init__(self, stable_threshold: float = 0.7, freeze_threshold: float = 0.3, hysteresis: float = 0.05,
                 update_period: int = 4, cautious_width_factor: float = 0.5, cautious_sparsity_factor: float = 2.0,
                 history_size: int = 1024):
        self.stable_threshold = C.real("stable_threshold", stable_threshold, low=0.0, high=1.0)
        self.freeze_threshold = C.real("freeze_threshold", freeze_threshold, low=0.0, high=1.0)
        if self.freeze_threshold > self.stable_threshold:
            raise ConfigurationError(
                f"freeze_threshold, stable_threshold: expected freeze_threshold <= stable_threshold, got "
                f"freeze_threshold={freeze_threshold!r} > stable_threshold={stable_threshold!r}")
        self.hysteresis = C.real("hysteresis", hysteresis, low=0.0, high=1.0)
        self.update_period = _integer("update_period", update_period, 1)
        self.cautious_width_factor = C.real("cautious_width_factor", cautious_width_factor, low=0.0, high=1.0, low_open=True)
        self.cautious_sparsity_factor = C.real("cautious_sparsity_factor", cautious_sparsity_factor, low=1.0)
        self.history_size = _integer("history_size", history_size, 1)
        self.reset()

    # -- state ------------------------------------------------------------------------------------
    def reset(self) -> None:
        """Back to the initial state: Stable, stale, no coherence, empty history, step 0."""
        self._mode = Mode.STABLE
        self._coherence: float | None = None
        self._history: deque[PolicyRecord] = deque(maxlen=self.history_size)
        self._stale = True
        self._since = 0
        self._step = 0

    def copy(self) -> "AttentionPolicy":
        """An independent copy (same configuration and state)."""
        new = object.__new__(AttentionPolicy)
        new.__dict__.update(self.__dict__)
        new._history = deque(self._history, maxlen=self.history_size)
        return new

    @property
    def mode(self) -> Mode:
        """The current mode."""
        return self._mode

    @property
    def coherence(self) -> float | None:
        """The coherence of the last refresh (None before the first)."""
        return self._coherence

    @property
    def steps(self) -> int:
        """Tokens seen so far (calls of :meth:`step`)."""
        return self._step

    @property
    def tokens_since_update(self) -> int:
        return self._since

    @property
    def is_stale(self) -> bool:
        return self._stale

    @property
    def history(self) -> list[PolicyRecord]:
        """The last ``history_size`` decisions, oldest first."""
        return list(self._history)

    def history_arrays(self) -> dict[str, np.ndarray]:
        """``{"step": int64, "coherence": float64, "mode": str, "code": int8}`` arrays of the history."""
        h = self._history
        return {
            "step": np.array([r.step for r in h], np.int64),
            "coherence": np.array([r.coherence for r in h], np.float64),
            "mode": np.array([r.mode.value for r in h], dtype="<U8"),
            "code": np.array([r.mode.code for r in h], np.int8),
        }

    # -- decisions -----------------------------------------------------------------------------------
    def raw_mode(self, coherence: float) -> Mode:
        """The mode of ``coherence`` ignoring hysteresis."""
        c = self._check_coherence(coherence)
        if c >= self.stable_threshold:
            return Mode.STABLE
        if c <= self.freeze_threshold:
            return Mode.FREEZE
        return Mode.CAUTIOUS

    def determine_mode(self, coherence: float) -> Mode:
        """Apply the raw mode of ``coherence`` with hysteresis, record it, and return the new mode."""
        c = self._check_coherence(coherence)
        raw = self.raw_mode(c)
        cur, h = self._mode, self.hysteresis
        if cur is Mode.STABLE and raw is Mode.CAUTIOUS:
            new = Mode.CAUTIOUS if c < self.stable_threshold - h else Mode.STABLE
        elif cur is Mode.CAUTIOUS and raw is Mode.STABLE:
            new = Mode.STABLE if c > self.stable_threshold + h else Mode.CAUTIOUS
        elif cur is Mode.CAUTIOUS and raw is Mode.FREEZE:
            new = Mode.FREEZE if c < self.freeze_threshold - h else Mode.CAUTIOUS
        elif cur is Mode.FREEZE and raw is Mode.CAUTIOUS:
            new = Mode.CAUTIOUS if c > self.freeze_threshold + h else Mode.FREEZE
        else:
            new = raw
        self._mode = new
        self._coherence = c
        self._history.append(PolicyRecord(self._step, c, new))
        return new

    @staticmethod
    def _check_coherence(coherence) -> float:
        try:
            c = float(coherence)
        except (TypeError, ValueError):
            raise DataError(f"coherence: expected a number in [0, 1], got {coherence!r}") from None
        if not math.isfinite(c):
            raise NumericalError(f"coherence: expected a finite number in [0, 1], got {coherence!r}")
        if not 0.0 <= c <= 1.0:
            raise DataError(f"coherence: expected a number in [0, 1], got {coherence!r}")
        return c

    # -- token bookkeeping ----------------------------------------------------------------------------
    def needs_update(self) -> bool:
        """True when the coherence must be refreshed: stale, or ``update_period`` tokens since."""
        return self._stale or self._since >= self.update_period

    def mark_stale(self) -> None:
        """Force a refresh at the next token (e.g. after the key window changed wholesale)."""
        self._stale = True

    def tick(self, tokens: int = 1) -> None:
        """Count ``tokens`` processed tokens without refreshing."""
        self._since += int(tokens)
        self._step += int(tokens)

    def refresh(self, coherence: float) -> Mode:
        """A coherence refresh: :meth:`determine_mode` and restart the refresh period (not stale)."""
        mode = self.determine_mode(coherence)
        self._since = 0
        self._stale = False
        return mode

    def step(self, coherence: float | Callable[[], float | None] | None) -> Mode:
        """Process one token: refresh from ``coherence`` if due, then tick; return the mode used.

        ``coherence`` is a number, a callable evaluated only when a refresh is due (so the
        expensive kNN metrics run every ``update_period`` tokens), or None (empty window).
        """
        if self.needs_update():
            c = coherence() if callable(coherence) else coherence
            if c is not None:
                self.refresh(c)
        self.tick()
        return self._mode

    def run(self, tokens: int, coherence_at: Callable[[int], float | None]) -> tuple[np.ndarray, np.ndarray]:
        """``tokens`` calls of :meth:`step`, token ``t`` refreshing from ``coherence_at(t)`` when due.

        Returns ``(codes (tokens,) int8, coherence (tokens,) float64)``: the mode code used for
        each token and the coherence in force (NaN before the first refresh). Equivalent to the
        loop over :meth:`step`, but loops only over the refresh points.
        """
        n = _integer("tokens", tokens, 0)
        codes = np.empty(n, np.int8)
        coh = np.empty(n, np.float64)
        t = 0
        while t < n:
            if self.needs_update():
                c = coherence_at(t)
                if c is not None:
                    self.refresh(c)
            span = 1 if self.needs_update() else min(n - t, self.update_period - self._since)
            span = max(span, 1)
            codes[t:t + span] = self._mode.code
            coh[t:t + span] = np.nan if self._coherence is None else self._coherence
            self.tick(span)
            t += span
        return codes, coh

    def run_constant(self, tokens: int, coherence: float | Callable[[], float | None] | None
                     ) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`run` with the same window for every token, in O(1) Python steps.

        ``coherence`` is a number, a callable (evaluated at most once, only if a refresh falls in
        these tokens) or None (empty window). With a fixed coherence every refresh after the first
        repeats the first decision (the hysteresis rule is idempotent: ``determine_mode(c)`` twice
        gives the mode of once), so the refreshes are recorded in bulk.
        """
        n = _integer("tokens", tokens, 0)
        codes = np.empty(n, np.int8)
        coh = np.empty(n, np.float64)
        first = min(n, 0 if self.needs_update() else self.update_period - self._since)
        codes[:first] = self._mode.code
        coh[:first] = np.nan if self._coherence is None else self._coherence
        self.tick(first)
        if first == n:
            return codes, coh
        c = coherence() if callable(coherence) else coherence
        if c is None:  # nothing to attend: no refresh, it stays due
            codes[first:] = self._mode.code
            coh[first:] = np.nan if self._coherence is None else self._coherence
            self.tick(n - first)
            return codes, coh
        start = self._step
        mode = self.refresh(c)
        remaining = n - first
        refreshes = -(-remaining // self.update_period)
        keep = min(refreshes - 1, self.history_size)
        c = self._coherence
        self._history.extend(PolicyRecord(start + self.update_period * j, c, mode)
                             for j in range(refreshes - keep, refreshes))
        codes[first:] = mode.code
        coh[first:] = c
        self._step = start + remaining
        self._since = remaining - self.update_period * (refreshes - 1)
        return codes, coh

    # -- what the mode implies -------------------------------------------------------------------------
    def attention_width(self, base: int) -> int:
        """Keys to attend: Stable ``base``, Cautious ``max(1, ⌊base·factor⌋)``, Freeze 0."""
        b = _integer("base", base, 0)
        if self._mode is Mode.STABLE:
            return b
        if self._mode is Mode.CAUTIOUS:
            return max(1, int(math.floor(b * self.cautious_width_factor)))
        return 0

    def sparsity_factor(self) -> float:
        """1 (Stable), ``cautious_sparsity_factor`` (Cautious), ``inf`` (Freeze)."""
        return {Mode.STABLE: 1.0, Mode.CAUTIOUS: self.cautious_sparsity_factor, Mode.FREEZE: math.inf}[self._mode]

    def allows_updates(self) -> bool:
        return self._mode is not Mode.FREEZE

    def allows_writes(self) -> bool:
        return self._mode is not Mode.FREEZE

    def mode_stability(self) -> float:
        """Fraction of the history equal to the current mode (1.0 with no history)."""
        if not self._history:
            return 1.0
        return sum(r.mode is self._mode for r in self._history) / len(self._history)

    def __repr__(self) -> str:
        return (f"AttentionPolicy(mode={self._mode.value}, coherence={self._coherence}, steps={self._step}, "
                f"stable_threshold={self.stable_threshold}, freeze_threshold={self.freeze_threshold}, "
                f"hysteresis={self.hysteresis}, update_period={self.update_period})")


def mode_names(codes: Iterable[int] | np.ndarray) -> np.ndarray:
    """Mode names (``"stable"``, ``"cautious"``, ``"freeze"``) of an array of mode codes."""
    names = np.array([m.value for m in MODES], dtype="<U8")
    return names[np.asarray(codes, dtype=np.int64)]
