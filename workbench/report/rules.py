"""The recommendation's decision list as data, and how its thresholds are fitted and validated.

:data:`RULES` — in order, the first rule whose conditions all hold picks the choice; Standard
when none does. Each condition is ``(feature, ">=" | "<=", threshold name)``; the threshold values
live in :data:`workbench.report.recommend.THRESHOLDS`. :func:`decide` applies the list (the
report uses it; nothing else decides).

Fitting (:func:`fit_thresholds`): given cases — a key set's features and the downstream score of
each calibrated candidate (:func:`workbench.report.evaluate`) — the thresholds minimise the total
*regret* (best score − score of the decided choice) over the cases, by coordinate descent from
the current values: each threshold in turn takes the candidate value (the midpoints between the
cases' values of its feature, or "never fires") with the least total regret, ties going to the
value nearest the current one, until a sweep changes nothing. A case's regret up to
:data:`TOLERANCE` (0.02, two standard errors of the accuracy) counts as none: a difference that
small between candidates is noise, and chasing it moves thresholds for nothing. :func:`leave_one_out` fits on all
cases but one and scores the one left out: the validation reported in ``docs/recommendation.md``
(``python -m benchmarks.recommendation``).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = ["RULES", "Rule", "decide", "regret", "fit_thresholds", "leave_one_out", "FITTED"]


@dataclass(frozen=True)
class Rule:
    """One rule: ``choice`` when every ``(feature, op, threshold)`` condition holds; ``name`` for the
    report, ``meaning`` what the conditions say about the keys."""

    name: str
    choice: str
    conditions: tuple
    meaning: str = ""

    def describe(self, features: dict, thresholds: dict) -> str:
        """``"feature = value op threshold and …: meaning"`` with the numbers of these keys."""
        parts = [f"{f} = {float(features[f]):.3g} {op} {float(thresholds[t]):.3g}" for f, op, t in self.conditions]
        return " and ".join(parts) + (f": {self.meaning}" if self.meaning else "")


RULES = (
    Rule("sequence", "Sparse", (("sequence_locality", ">=", "sparse_locality"),
                                ("window_fraction", "<=", "sparse_window_fraction")),
         "kNN neighbours are sequence neighbours, within a window much shorter than the sequence"),
    Rule("hierarchy", "Geometric", (("gromov_delta", "<=", "geometric_delta"),
                                    ("h0_ratio", ">=", "geometric_h0_ratio")),
         "tree-like, multi-scale distances"),
    Rule("sphere", "Geometric", (("norm_share", "<=", "geometric_sphere_share"),),
         "the keys lie on a sphere (their lengths are all alike)"),
    Rule("norms", "Geometric", (("norm_share", ">=", "geometric_norm_share"),),
         "key lengths drive the dot products"),
    Rule("noisy structure", "Diffusion", (("key_roughness", ">=", "diffusion_roughness"),
                                          ("structure_contrast", "<=", "diffusion_contrast")),
         "noisy keys on a smooth structure"),
)

#: The thresholds the rules read (the ones :func:`fit_thresholds` fits).
FITTED = tuple(dict.fromkeys(c[2] for r in RULES for c in r.conditions))


def _holds(value: float, op: str, threshold: float) -> bool:
    return value >= threshold if op == ">=" else value <= threshold


def decide(features: dict, thresholds: dict) -> tuple[str, Rule | None]:
    """``(choice, the rule that fired or None)`` for ``features`` under ``thresholds``."""
    if features.get("n_keys", math.inf) < thresholds.get("min_keys", 0):
        return "Standard", None
    for rule in RULES:
        if all(_holds(float(features[f]), op, float(thresholds[t])) for f, op, t in rule.conditions):
            return rule.choice, rule
    return "Standard", None


def regret(case: dict, thresholds: dict) -> float:
    """Best score − score of the decided choice, for ``case = {"features": …, "scores": {choice: score}}``."""
    scores = {c: s for c, s in case["scores"].items() if s is not None}
    choice, _ = decide(case["features"], thresholds)
    if choice not in scores:
        return max(scores.values()) - min(scores.values())  # an unscored choice counts as the worst
    return max(scores.values()) - scores[choice]


def _candidates(name: str, cases: list) -> list:
    """Midpoints between the cases' sorted distinct values of the feature ``name`` reads, and ±inf."""
    feats = [c[0] for r in RULES for c in r.conditions if c[2] == name]
    vals = sorted({float(case["features"][f]) for case in cases for f in feats})
    mids = [(a + b) / 2 for a, b in zip(vals, vals[1:])]
    return [-math.inf, *mids, math.inf]


#: Regret up to this counts as none when fitting: leave-one-out accuracy on 1,000–2,000 keys has a
#: standard error of about 0.01, so differences within two of them are noise (and 0.02 is the
#: regret the recommendation is held to).
TOLERANCE = 0.02


def fit_thresholds(cases: list, start: dict, max_sweeps: int = 20, tolerance: float = TOLERANCE) -> dict:
    """Thresholds (a copy of ``start`` with :data:`FITTED` refitted) minimising the total regret on ``cases``
    (each case's regret up to ``tolerance`` counted as 0)."""
    th = dict(start)

    def total(t):
        return sum(r for r in (regret(c, t) for c in cases) if r > tolerance + 1e-12)

    for _ in range(max_sweeps):
        changed = False
        for name in FITTED:
            cur = th[name]
            best = None
            for v in _candidates(name, cases) + [cur]:
                trial = {**th, name: v}
                key = (round(total(trial), 12), abs(v - cur) if math.isfinite(v - cur) else math.inf)
                if best is None or key < best[0]:
                    best = (key, v)
            if best[1] != cur:
                th[name] = best[1]
                changed = True
        if not changed:
            break
    return th


def leave_one_out(cases: list, start: dict, tolerance: float = TOLERANCE) -> list[dict]:
    """For each case: thresholds fitted on the others, the choice they make on it and its regret."""
    out = []
    for i, case in enumerate(cases):
        th = fit_thresholds(cases[:i] + cases[i + 1:], start, tolerance=tolerance)
        choice, rule = decide(case["features"], th)
        scores = {c: s for c, s in case["scores"].items() if s is not None}
        out.append({"name": case.get("name", str(i)), "choice": choice, "rule": None if rule is None else rule.name,
                    "best": max(scores, key=scores.get), "regret": regret(case, th), "thresholds": th})
    return out
