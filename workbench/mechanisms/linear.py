"""Linear attention with random features (Performer FAVOR+) or ReLU / ELU+1 feature maps."""
from __future__ import annotations

import numpy as np
import param

import kernels
from kernels.gpu.host import via_host
from kernels.linear import LINEAR
from kernels.reference.linear import FEATURE_KERNELS, feature_map, implied_weights, random_features
from kernels.reference.dense import allowed_pattern
from workbench.errors import ConfigurationError, ShapeError
from workbench.mechanisms import params as P
from workbench.mechanisms.base import Mechanism
from workbench.registry import register


@register("linear")
class Linear(Mechanism):
    """Linear attention: ``φ(Q)(φ(K)ᵀV) / φ(Q)(φ(K)ᵀ1)`` in ``O(L·m·dv)``.

    FAVOR+: ``φ(x) = exp(w·x' − ‖x'‖²/2)/√m``, ``x' = √s·x``, ``w ~ N(0, I)`` (orthogonal
    blocks), so ``E[φ(q)·φ(k)] = exp(s q·k)`` and the output estimates softmax attention.
    ReLU: ``max(0, w·x')``; ELU+1: ``elu(w·x') + 1``. Causal form by prefix sums.
    Paper: Choromanski et al., *Rethinking Attention with Performers*, 2021;
    Katharopoulos et al., *Transformers are RNNs*, 2020.
    """

    family = "core"
    softmax_rows = False
    formula = "φ(Q)(φ(K)ᵀV) / φ(Q)(φ(K)ᵀ1),  E[φ(q)·φ(k)] = exp(s q·k)"
    time_complexity = "O((Lq+Lk)·m·(d+dv))"
    memory_complexity = "O((Lq+Lk)·m + m·dv)"
    kernels_used = (LINEAR,)
    #: Key shards merge exactly: a shard's output with ``lse = log(φ(q)·Σφ(k)) + key stabiliser``
    #: weighs it by its share of the normaliser (without causal masking, masks or ``redraw``).
    not_shardable = None

    num_features = param.Integer(default=256, bounds=(1, 16_384), doc="Number of random features m.")
    kernel = param.Selector(default="favor+", objects=list(FEATURE_KERNELS),
                            doc="Feature map: 'favor+' (positive random features for softmax), 'relu' or 'elu+1'.")
    orthogonal = param.Boolean(default=True, doc="Draw the random features as orthogonal blocks (lower variance).")
    redraw = param.Boolean(default=False, doc="Draw new random features on every call (training-time FAVOR+).")
    causal = P.causal()
    scale = P.scale()
    seed = P.seed()

    def __init__(self, **params):
        super().__init__(**params)
        self._draws = 0
        self._features: dict = {}

    def features(self, d: int) -> np.ndarray:
        """The random feature matrix ``W (m, d)`` in use for dimension ``d``."""
        key = (d, self.num_features, self.orthogonal, self.seed, self._draws)
        if key not in self._features:
            self._features = {key: random_features(self.num_features, d, [self.seed, self._draws], self.orthogonal)}
        return self._features[key]

    def draw_features(self) -> None:
        """Replace the random features by a fresh, seeded draw (the n-th redraw is reproducible)."""
        self._draws += 1

    def _check(self, b):
        if self.causal and b.q.shape[1] != b.k.shape[1]:
            raise ShapeError(f"q, k: causal linear attention needs Lq == Lk, got Lq={b.q.shape[1]}, Lk={b.k.shape[1]}")

    def _maps(self, b):
        if self.redraw:
            self.draw_features()
        w = self.features(b.dim)
        s = self._scale(b.dim)
        key_padding = b.mask[:, 0, :] if b.mask is not None and b.mask.shape[1] == 1 else None
        return feature_map(b.q, w, self.kernel, s, True), feature_map(b.k, w, self.kernel, s, False, key_padding)

    def _shard_partial(self, b, query_offset, key_offset):
        if self.causal or self.redraw or b.mask is not None:
            raise ConfigurationError("linear: by key shards only without causal, mask or redraw (their prefix "
                                     "sums, masks and fresh features do not split by keys)")
        w = self.features(b.dim)
        s = self._scale(b.dim)
        qf = feature_map(b.q, w, self.kernel, s, True)
        kf, stab = feature_map(b.k, w, self.kernel, s, False, return_stabilizer=True)
        out = kernels.linear_attention(qf, kf, b.v, backend=self.backend)
        den = np.einsum("bqm,bm->bq", qf.astype(np.float64), kf.astype(np.float64).sum(axis=1))
        with np.errstate(divide="ignore"):
            lse = np.where(den > 0, np.log(np.where(den > 0, den, 1.0)) + stab[:, :, 0], -np.inf)
        return out, lse

    def _forward(self, b):
        qf, kf = self._maps(b)
        # a key-padding mask is already in φ(k) (zeroed keys add nothing): the kernels need only general masks,
        # which the GPU kernel does not take
        mask = None if b.mask is not None and b.mask.shape[1] == 1 else b.mask
        return kernels.linear_attention(qf, kf, b.v, mask=mask, causal=self.causal, backend=self.backend)

    def _weights(self, b):
        """The weights the features imply, ``φ(q_i)·φ(k_j) / Σ_j φ(q_i)·φ(k_j)`` (dense, for inspection)."""
        qf, kf = self._maps(b)
        lq, lk = b.q.shape[1], b.k.shape[1]
        # dense (Lq × Lk), for inspection: CuPy maps on host copies (CuPy in and out)
        return via_host(lambda qf, kf, m: implied_weights(qf, kf, allowed_pattern(m, lq, lk, self.causal)), qf, kf,
                        b.mask)
