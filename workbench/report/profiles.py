"""Threshold profiles of the report: the scale-free default and upstream's numbers (``"compat"``).

**default** (the seed README's intended thresholds, on scale-free values, docs/upstream.md#report):

=====================  ===============  ================================================  ==========  =======  ========
metric                 direction        value                                             healthy     warning  critical
=====================  ===============  ================================================  ==========  =======  ========
``ot_distance``        higher is worse  ``SW₂(queries, keys) / mean_j ‖k_j‖``              0 – 0.5     > 0.3    > 0.7
``topology_coherence`` lower is worse   window coherence (boundary mass, sim. variance)   0.5 – 1     < 0.3    < 0.1
``h0_persistence``     higher is worse  ``mean(deaths) / median(deaths)`` (H0, > 0 only)  0 – 1.5     > 2      > 5
``ib_kl``              higher is worse  ``KL(N(μ, e^{lv}) ‖ N(0, I)) / d`` (nats per dim)  0 – 0.2     > 0.5    > 1
``diffusion_energy``   higher is worse  ``½Σ w_ij (x_i − x_j)² / ‖x − x̄‖²``                0 – 1       > 2      > 5
``attention_entropy``  two-sided        ``H(w) / ln n`` (1 for ``n = 1``)                 0.1 – 0.9   ∉ ±      ∉ ±
=====================  ===============  ================================================  ==========  =======  ========

The README gives no H0 numbers; ours make a single-scale cloud (ratio ≈ 1) healthy and a
hierarchy whose merges span several scales (ratio ≥ 2) a warning. The README's entropy range
"1.0 – 4.0" is in nats and cannot be a ratio. As a ratio the entropy is **two-sided**: attention
that is near one-hot (``< 0.1``) or near uniform (``> 0.9``) carries little information, a
warning; below 0.02 or above 0.98 it is critical (uniform attention — what scaled dot-product
gives unit-norm embeddings at ``s = 1/√d`` — averages every key alike). Where a healthy range reaches past the warning threshold (OT: healthy
to 0.5, warning above 0.3) the warning threshold wins for the status and the score (see
:mod:`workbench.report.metrics`).

**compat** (upstream ``unified_report``, raw values): OT ``mean_j mean_p |⟨θ_p, q − k_j⟩|``
(8 projections) 0–10 / 5 / 8; coherence 0–1 / 0.3 / 0.1; H0 ``Σ deaths`` (all ``n − 1``)
0–100 / 50 / 80; IB KL (nats, summed over dimensions) 0–100 / 50 / 80; diffusion energy
``½Σ w_ij (x_i − x_j)²`` (Gaussian kNN affinity, ``σ = 1``) 0–100 / 50 / 80; entropy (nats)
``0 – max(ln n, 1)`` / 0.5 / 0.2 — with the directions fixed (upstream treated all six as
higher-is-worse).
"""
from __future__ import annotations

import math

from workbench.errors import ConfigurationError
from workbench.report.metrics import HIGHER_IS_WORSE, LOWER_IS_WORSE, TWO_SIDED, MetricSpec

__all__ = ["METRIC_NAMES", "PROFILES", "DIRECTION_OF", "UPSTREAM_NAMES", "profile_specs", "check_profile"]

#: The report's metrics, in report order (H0 last, as upstream appends it).
METRIC_NAMES = ("ot_distance", "topology_coherence", "ib_kl", "diffusion_energy", "attention_entropy",
                "h0_persistence")
PROFILES = ("default", "compat")
#: Upstream's metric type names → ours.
UPSTREAM_NAMES = {"OTDistance": "ot_distance", "TopologyCoherence": "topology_coherence", "IBKL": "ib_kl",
                  "DiffusionEnergy": "diffusion_energy", "AttentionEntropy": "attention_entropy",
                  "H0Persistence": "h0_persistence"}
_DIRECTIONS = {"ot_distance": HIGHER_IS_WORSE, "topology_coherence": LOWER_IS_WORSE, "ib_kl": HIGHER_IS_WORSE,
               "diffusion_energy": HIGHER_IS_WORSE, "attention_entropy": TWO_SIDED,
               "h0_persistence": HIGHER_IS_WORSE}
#: compat keeps upstream's one-sided entropy in nats
_COMPAT_DIRECTIONS = {**_DIRECTIONS, "attention_entropy": LOWER_IS_WORSE}
#: Direction of every metric in the default profile, by our name and by upstream's.
DIRECTION_OF = {**_DIRECTIONS, **{up: _DIRECTIONS[ours] for up, ours in UPSTREAM_NAMES.items()}}

_DEFAULT = {
    "ot_distance": ((0.0, 0.5), 0.3, 0.7,
                    "sliced 2-Wasserstein distance between the queries and the keys, divided by the mean key norm"),
    "topology_coherence": ((0.5, 1.0), 0.3, 0.1,
                           "kNN window coherence (mean of boundary mass and similarity variance), in [0, 1]"),
    "ib_kl": ((0.0, 0.2), 0.5, 1.0, "KL(N(mu, exp(logvar)) || N(0, I)) per dimension, nats"),
    "diffusion_energy": ((0.0, 1.0), 2.0, 5.0,
                         "Dirichlet energy of the (centred) logits on the Gaussian kNN key graph divided by "
                         "their squared norm"),
    "attention_entropy": ((0.1, 0.9), (0.1, 0.9), (0.02, 0.98),
                          "attention entropy as a fraction of its maximum ln n (0 one-hot, 1 uniform)"),
    "h0_persistence": ((0.0, 1.5), 2.0, 5.0,
                       "H0 total persistence in units of the median death: mean/median of the n-1 deaths"),
}

_COMPAT = {
    "ot_distance": ((0.0, 10.0), 5.0, 8.0, "mean absolute projected distance query-key (8 projections)"),
    "topology_coherence": ((0.0, 1.0), 0.3, 0.1, "kNN window coherence, in [0, 1]"),
    "ib_kl": ((0.0, 100.0), 50.0, 80.0, "KL(N(mu, exp(logvar)) || N(0, I)), nats"),
    "diffusion_energy": ((0.0, 100.0), 50.0, 80.0, "x^T L x of the raw logits, Gaussian kNN affinity sigma 1"),
    "attention_entropy": (None, 0.5, 0.2, "attention entropy, nats"),
    "h0_persistence": ((0.0, 100.0), 50.0, 80.0, "sum of the n-1 finite H0 deaths"),
}


def check_profile(profile) -> str:
    """``profile`` validated: one of :data:`PROFILES` (ConfigurationError otherwise)."""
    if not isinstance(profile, str) or profile not in PROFILES:
        raise ConfigurationError(f"profile: expected one of {PROFILES}, got {profile!r}")
    return profile


def profile_specs(profile: str = "default", n_keys: int = 1) -> dict[str, MetricSpec]:
    """The :class:`MetricSpec` of every metric in ``profile`` for a report over ``n_keys`` keys.

    (Only compat's entropy range depends on ``n_keys``: ``0 – max(ln n, 1)``.)
    """
    default = check_profile(profile) == "default"
    table, directions = (_DEFAULT, _DIRECTIONS) if default else (_COMPAT, _COMPAT_DIRECTIONS)
    out = {}
    for name in METRIC_NAMES:
        healthy, w, c, desc = table[name]
        if healthy is None:
            healthy = (0.0, max(math.log(max(int(n_keys), 1)), 1.0))
        out[name] = MetricSpec(name, directions[name], healthy, w, c, desc)
    return out
