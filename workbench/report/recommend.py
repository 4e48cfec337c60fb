"""The recommendation: Standard, Sparse, Geometric or Diffusion attention, plus temperature advice.

The first rule that fires wins (docs/upstream.md#report, refined so that each rule is a
measured property of the keys that the recommended mechanism exploits — see
:mod:`workbench.report.features` for every feature):

1. **too few keys** (``n < 8``) → Standard.
2. **Sparse** (``local_global``) if ``sequence_locality ≥ 0.5``: the geometric neighbours of most
   keys are their sequence neighbours, so a sliding window sees the keys that matter and
   nothing else; the window is ``2·p90(|i − j|) + 1`` over the kNN edges (at least 8).
   (Upstream's "low coherence → Cautious/top-k" cannot tell structure from noise: its
   coherence is ≈ 0.3 for a structureless Gaussian cloud and higher for a well-ordered sequence,
   so the order-aware part of it — locality — is what decides.)
3. **Geometric** (``hyperbolic``) if ``gromov_delta ≤ 0.15`` **and** ``h0_ratio ≥ 2``: the
   distances are close to a tree metric *and* the H0 merges span several scales (a hierarchy,
   not a star-shaped cloud whose distances are all alike). Parameters: calibrated (curvature
   ``c = 1`` when the keys lie in the unit ball, else ``c = (0.95/max‖k‖)²``, then the temperature).
4. **Diffusion** (``diffusion``) if ``key_roughness ≥ 0.25`` **and** ``structure_contrast ≤ 0.5``:
   a large share of the keys' variance changes between graph neighbours (the logits are rough
   over the key graph), while the leading direction of variance is smooth over the same graph
   (there is a structure to diffuse along): heat diffusion of the logits on the kNN graph
   averages each score over the key's neighbourhood. Parameters: the report's kNN graph (``k``
   neighbours, random-walk Laplacian) and ``diffusion_time t = clip(1/(2·ρ_pc), 1, 10)`` with
   ``ρ_pc`` the first principal component's roughness — in the random-walk spectrum the
   structure signal keeps about ``e^{−1/2}`` of itself while a graph-unrelated signal (``ρ ≈ 1``)
   is damped by ``e^{−t}``. Falls back to ``scaled_dot_product``, with a note, when no
   ``diffusion`` mechanism is registered.
5. **Standard** (``scaled_dot_product``) otherwise.

The thresholds sit between the ranges the features take on the labelled suite
(:mod:`workbench.report.suite`, several seeds, sizes and noise levels): locality ≈ 0.06 for
random order vs 0.89–1.0 for sequences; δ 0.06–0.10 for trees vs 0.18–0.37 for the other
cases; H0 ratio 3.3–4.2 for trees vs 1.00–1.04; roughness 0.39–0.70 for noisy clusters vs ≤ 0.13
for trees and sequences; contrast 0.07–0.38 for noisy clusters vs ≥ 0.79 for isotropic clouds.

Every recommendation is **calibrated** (:func:`workbench.calibrate`, target 0.5): the rule's
structural parameters (window, graph, diffusion time) are kept and the temperature (and any
domain parameter) is fitted to the keys, so ``workbench.make(rec.mechanism, **rec.params)`` is
the recommended configuration, ready for unit-norm embeddings as for any other data.

Temperature advice: with ``r`` the normalised entropy ``H/ln n`` of scaled dot-product attention
at its default scale, ``r < 0.1`` → increase the temperature (attention nearly one-hot),
``r > 0.9`` → decrease it (nearly uniform), else keep it; ``suggested_temperature`` brings ``r``
to 0.5 (the calibrated ``T`` of scaled dot-product for a key set).
"""
from __future__ import annotations

import numpy as np

from workbench.report.records import Recommendation
from workbench.report.rules import RULES, decide

__all__ = ["THRESHOLDS", "recommend", "temperature_advice", "mechanism_for"]

#: Every threshold the rules use, by name (reported in ``Recommendation.numbers``).
THRESHOLDS = {
    "min_keys": 8,
    "sparse_locality": 0.5,
    "sparse_window_fraction": 0.25,
    "geometric_delta": 0.15,
    "geometric_h0_ratio": 2.0,
    "geometric_sphere_share": 0.001,
    "geometric_norm_share": 0.3,
    "diffusion_roughness": 0.25,
    "diffusion_contrast": 0.5,
    "entropy_low": 0.1,
    "entropy_high": 0.9,
}

_MECHANISM = {"Standard": "scaled_dot_product", "Sparse": "local_global", "Geometric": "hyperbolic",
              "Diffusion": "diffusion"}


def mechanism_for(choice: str) -> tuple[str, tuple]:
    """Registry name for ``choice`` and notes (a fallback when the mechanism is not registered)."""
    from workbench.registry import list_mechanisms

    name = _MECHANISM[choice]
    if name in list_mechanisms():
        return name, ()
    return "scaled_dot_product", (f"mechanism {name!r} is not registered in this installation; "
                                  f"falling back to 'scaled_dot_product'",)


def temperature_advice(ratio: float, suggested: float | None, source: str, n_keys: int = 2) -> str:
    """One sentence of advice from the normalised entropy ``ratio`` (see the module docstring)."""
    if n_keys < 2:
        return "keep the temperature: with a single key attention has nothing to spread over"
    t = (f" (about T = {suggested:.3g} brings it to 0.5)" if suggested is not None else
         " (no temperature in [1e-4, 1e4] brings it to 0.5: the logits are all but tied; rescale the keys or "
         "use the recommended mechanism)")
    # the figure is the report's attention_entropy metric (H/ln n), named and printed as the metric is
    figure = f"attention_entropy = {ratio:.4g} (H/ln n)"
    if ratio < THRESHOLDS["entropy_low"]:
        return (f"increase the temperature: {source} is nearly one-hot ({figure} < {THRESHOLDS['entropy_low']}){t}")
    if ratio > THRESHOLDS["entropy_high"]:
        return (f"decrease the temperature: {source} is nearly uniform ({figure} > {THRESHOLDS['entropy_high']}){t}")
    return (f"keep the temperature: {source} has {figure}, within "
            f"[{THRESHOLDS['entropy_low']}, {THRESHOLDS['entropy_high']}]")


def _diffusion_params(pc_roughness: float, k: int, n: int) -> dict:
    # diffuse until the structure signal keeps about e^{-1/2} of itself: t·ρ_pc = 1/2
    t = float(np.clip(0.5 / pc_roughness, 1.0, 10.0)) if pc_roughness > 0 else 10.0
    return {"graph": "knn", "k": int(max(1, min(k, n - 1))), "diffusion_time": t, "laplacian": "random_walk"}


def _sparse_params(gap_p90: int, n: int) -> dict:
    return {"window": int(min(max(8, 2 * gap_p90 + 1), max(n, 1))), "num_global_tokens": 2}


_WHY = {  # each rule's reasoning in plain words, with the numbers of the keys at hand
    "sequence": lambda f, p: (
        f"{100 * f['sequence_locality']:.0f}% of the keys' nearest neighbours lie within {f['locality_window']} "
        f"positions of them in the sequence (the row order), so a sliding window of {p['window']} keys sees the "
        f"relevant keys; global attention also mixes in far positions that happen to score high. (If the rows are "
        f"sorted by class, the order itself carries the class: shuffle them to judge the embeddings alone.)"),
    "hierarchy": lambda f, p: (
        f"The key distances are close to a tree metric (relative Gromov delta {f['gromov_delta']:.3f}) and their H0 "
        f"merges span several scales (mean/median death {f['h0_ratio']:.1f}): a hierarchy, which hyperbolic space "
        f"embeds with low distortion and Euclidean dot products do not."),
    "sphere": lambda f, p: (
        "The keys all have about the same length (unit-norm embeddings), so only their directions differ. "
        "Hyperbolic attention, calibrated so its ball holds them at 0.95 of its radius, scores a key by exp(−d/T) "
        "with d growing like ln(1 − cos θ): weights fall as a power of (1 − cos θ), sharper near the query and with "
        "a longer tail than the exponential of cos θ that dot products give."),
    "norms": lambda f, p: (
        f"The keys' lengths explain a large share ({f['norm_share']:.2f}) of how much the dot-product logits vary, "
        f"so dot-product attention favours long keys rather than near ones; a distance-based softmax (hyperbolic "
        f"attention, calibrated so its ball holds the keys) compares positions only."),
    "noisy structure": lambda f, p: (
        f"The keys vary a lot between kNN-graph neighbours (roughness {f['key_roughness']:.2f}, where 1 is a signal "
        f"unrelated to the graph), yet their leading direction is smooth on the same graph (contrast "
        f"{f['structure_contrast']:.2f}): noisy keys around a cluster/manifold structure. Diffusing the logits over "
        f"the key graph (t = {p['diffusion_time']:.2f}) averages out the noise along the structure."),
}


def _calibrated(mechanism: str, keys: np.ndarray, params: dict, seed: int):
    """``calibrate(mechanism, keys, **params)`` (target 0.5), or None for fewer than 2 keys."""
    from workbench.calibration import calibrate

    if keys.shape[0] < 2:
        return None
    return calibrate(mechanism, keys, sample_seed=seed, **params)


def recommend(f: dict, keys: np.ndarray, *, k: int, seed: int, entropy_ratio: float,
              suggested_temperature: float | None, entropy_source: str,
              calibrate_from_keys: bool = True) -> Recommendation:
    """Apply the rules to the features ``f`` (see :func:`workbench.report.build.build_report`).

    The chosen mechanism is calibrated on ``keys``; with ``calibrate_from_keys`` and a
    normalised entropy outside ``[0.1, 0.9]`` the temperature advice quotes the calibrated ``T``
    of scaled dot-product.
    """
    th = THRESHOLDS
    numbers = {**f, "thresholds": th, "entropy_ratio": entropy_ratio}
    n = int(f["n_keys"])
    params: dict = {}
    choice, fired = decide(f, th)
    if n < th["min_keys"]:
        rule = f"n_keys = {n} < {th['min_keys']}: too few keys to measure structure"
        why = "There are too few keys to measure any structure, so plain scaled dot-product attention is kept."
    elif fired is None:
        rule = "no rule fired: " + "; ".join(
            f"{r.choice} ({r.name}) needs {' and '.join(f'{f} {op} {th[t]:.3g}' for f, op, t in r.conditions)}"
            for r in RULES) + " — " + ", ".join(f"{f} = {f_:.3g}" for f, f_ in (
                (name, float(f[name])) for name in dict.fromkeys(c[0] for r in RULES for c in r.conditions)))
        why = ("The keys show no structure a specialised mechanism would exploit, so scaled dot-product attention "
               "(calibrated) is the right choice.")
    else:
        rule = fired.describe(f, th)
        if fired.name == "sequence":
            params = _sparse_params(int(f["index_gap_p90"]), n)
        elif fired.name == "noisy structure":
            params = _diffusion_params(f["pc_roughness"], k, n)
        why = _WHY[fired.name](f, params)
    mechanism, notes = mechanism_for(choice)
    if mechanism != _MECHANISM[choice]:
        params = {}
    cal = _calibrated(mechanism, keys, params, seed)
    calibration = ""
    if cal is not None:
        params = dict(cal.calibration.params)
        calibration = cal.calibration.describe()
        notes = tuple(notes) + tuple(cal.calibration.notes)
    if calibrate_from_keys and n >= 2 and not (th["entropy_low"] <= entropy_ratio <= th["entropy_high"]):
        std = cal if mechanism == "scaled_dot_product" else _calibrated("scaled_dot_product", keys, {}, seed)
        suggested_temperature = std.calibration.temperature
    advice = temperature_advice(entropy_ratio, suggested_temperature, entropy_source, n)
    return Recommendation(choice, mechanism, rule, numbers, advice, why, params, suggested_temperature, notes,
                          calibration, None if cal is None else cal.calibration)
