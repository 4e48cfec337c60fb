"""Information bottleneck: KL divergences, the variational bottleneck layer, attention compression.

* KL divergences of diagonal Gaussians and of categorical distributions, Jensen–Shannon;
* :class:`VariationalBottleneck`, the VIB layer: linear mean and log-variance heads (seeded),
  reparameterised sampling with seeded noise, the KL to ``N(0, I)`` weighted by an annealed β,
  and the gradients of its loss with respect to its parameters;
* :func:`compress_attention`, the rate–distortion (IB) trade-off applied to attention rows.

Every function is batched over leading axes; reductions are over the last axis. Computations run
in float64; results come back in the input dtype (float32 unless every input is float64).
Papers: Tishby, Pereira & Bialek, *The information bottleneck method*, 1999; Alemi et al., *Deep
Variational Information Bottleneck*, 2017; Kingma & Welling, *Auto-Encoding Variational Bayes*,
2014; Lin, *Divergence measures based on the Shannon entropy*, 1991.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from workbench import checks as C
from workbench.errors import ConfigurationError, DataError, NumericalError, ShapeError
from workbench.information_geometry import _broadcast, _out_dtype, _vectors, as_distribution

__all__ = [
    "kl_gaussian_unit", "kl_gaussian_unit_grad", "kl_diagonal_gaussians", "kl_categorical", "jensen_shannon",
    "reparameterize", "beta_schedule", "SCHEDULES", "VariationalBottleneck", "BottleneckOutput",
    "compress_attention", "CompressedAttention",
]

#: β annealing schedules of :func:`beta_schedule` and :class:`VariationalBottleneck`.
SCHEDULES = ("constant", "linear", "cosine")


def _finite(name: str, x: np.ndarray) -> np.ndarray:
    if not np.isfinite(x).all():
        raise NumericalError(f"{name}: the result left the finite range (inputs too large); rescale the inputs")
    return x


def _real(name: str, value, lo=None, *, lo_open=False) -> float:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise ConfigurationError(f"{name}: expected a number, got {value!r}")
    v = float(value)
    if not math.isfinite(v) or (lo is not None and (v < lo or (lo_open and v == lo))):
        raise ConfigurationError(f"{name}: expected a finite number {'>' if lo_open else '>='} {lo}, got {value!r}")
    return v


def _integer(name: str, value, lo: int) -> int:
    return C.integer(name, value, minimum=lo)


# -- KL divergences ------------------------------------------------------------------------------------

def kl_gaussian_unit(mu, logvar) -> np.ndarray:
    """``KL(N(μ, diag e^{lv}) ‖ N(0, I)) = ½ Σ_i (e^{lv_i} + μ_i² − 1 − lv_i)`` over the last axis.

    ``mu (..., z)``, ``logvar (..., z)`` broadcast → ``(...)`` (a 0-d array for 1-D inputs).
    ``e^{lv} − 1 − lv`` is evaluated as ``expm1(lv) − lv`` (no cancellation near ``lv = 0``).
    Kingma & Welling 2014, appendix B.
    """
    m, mdt = _vectors("mu", mu)
    lv, ldt = _vectors("logvar", logvar)
    m, lv = _broadcast(("mu", "logvar"), m, lv)
    with np.errstate(over="ignore"):
        kl = 0.5 * np.sum(np.expm1(lv) - lv + m * m, axis=-1)
    return _finite("logvar", np.maximum(kl, 0.0)).astype(_out_dtype(mdt, ldt))


def kl_gaussian_unit_grad(mu, logvar) -> tuple[np.ndarray, np.ndarray]:
    """Gradients of :func:`kl_gaussian_unit`: ``(∂/∂μ, ∂/∂lv) = (μ, ½(e^{lv} − 1))``, shapes of the inputs."""
    m, mdt = _vectors("mu", mu)
    lv, ldt = _vectors("logvar", logvar)
    m, lv = _broadcast(("mu", "logvar"), m, lv)
    dt = _out_dtype(mdt, ldt)
    with np.errstate(over="ignore"):
        g = 0.5 * np.expm1(lv)
    return m.astype(dt), _finite("logvar", g).astype(dt)


def kl_diagonal_gaussians(mu1, logvar1, mu2, logvar2) -> np.ndarray:
    """``KL(N(μ₁, e^{lv₁}) ‖ N(μ₂, e^{lv₂}))`` for diagonal covariances, summed over the last axis.

    ``½ Σ_i (e^{Δ_i} − 1 − Δ_i + (μ₁ − μ₂)_i² e^{−lv₂,i})`` with ``Δ = lv₁ − lv₂`` (equal to the
    textbook ``½ Σ (lv₂ − lv₁ + (e^{lv₁} + (μ₁ − μ₂)²)/e^{lv₂} − 1)``, without its cancellation).
    All four ``(..., z)`` broadcast → ``(...)``.
    """
    arrs = [_vectors(n, x) for n, x in (("mu1", mu1), ("logvar1", logvar1), ("mu2", mu2), ("logvar2", logvar2))]
    m1, l1, m2, l2 = _broadcast(("mu1", "logvar1", "mu2", "logvar2"), *(a for a, _ in arrs))
    delta = l1 - l2
    with np.errstate(over="ignore", invalid="ignore"):
        kl = 0.5 * np.sum(np.expm1(delta) - delta + (m1 - m2) ** 2 * np.exp(-l2), axis=-1)
    return _finite("logvar2", np.maximum(kl, 0.0)).astype(_out_dtype(*(d for _, d in arrs)))


def _kl_cat(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    from scipy.special import rel_entr  # p log(p/q), 0 log 0 = 0, p > 0 = q → inf

    return np.asarray(np.maximum(np.sum(rel_entr(p, q), axis=-1), 0.0))


def kl_categorical(p, q) -> np.ndarray:
    """``KL(p ‖ q) = Σ_i p_i ln(p_i / q_i)`` of categorical distributions (nats), over the last axis.

    ``0·ln(0/q) = 0``; ``p_i > 0 = q_i`` gives ``+inf`` (the true value; upstream clamps both to
    1e-10 and reports a finite number). ``p, q (..., n)`` must be probability vectors (entries
    ``≥ 0`` summing to 1, else :class:`~workbench.errors.DataError` naming ``p`` or ``q``);
    broadcast → ``(...)``.
    """
    pp, qq = as_distribution(p, "p"), as_distribution(q, "q")
    pp, qq = _broadcast(("p", "q"), pp, qq)
    return _kl_cat(pp, qq).astype(_out_dtype(np.asarray(p).dtype, np.asarray(q).dtype))


def jensen_shannon(p, q) -> np.ndarray:
    """``JS(p, q) = ½ KL(p ‖ m) + ½ KL(q ‖ m)``, ``m = (p + q)/2``: symmetric, in ``[0, ln 2]`` nats.

    ``p, q (..., n)`` probability vectors, broadcast → ``(...)``. (``scipy.spatial.distance
    .jensenshannon`` returns the square root, a metric.) Lin 1991.
    """
    pp, qq = as_distribution(p, "p"), as_distribution(q, "q")
    pp, qq = _broadcast(("p", "q"), pp, qq)
    m = 0.5 * (pp + qq)
    js = np.minimum(0.5 * _kl_cat(pp, m) + 0.5 * _kl_cat(qq, m), math.log(2.0))
    return js.astype(_out_dtype(np.asarray(p).dtype, np.asarray(q).dtype))


# -- sampling and β ---------------------------------------------------------------------------------------

def reparameterize(mu, logvar, noise) -> np.ndarray:
    """``z = μ + e^{lv/2} ⊙ ε``: a sample of ``N(μ, diag e^{lv})`` differentiable in ``μ, lv``.

    ``mu, logvar, noise (..., z)`` broadcast → ``(..., z)``; ``ε = 0`` returns the mean.
    Kingma & Welling 2014.
    """
    m, mdt = _vectors("mu", mu)
    lv, ldt = _vectors("logvar", logvar)
    e, edt = _vectors("noise", noise)
    m, lv, e = _broadcast(("mu", "logvar", "noise"), m, lv, e)
    with np.errstate(over="ignore", invalid="ignore"):
        z = m + np.exp(0.5 * lv) * e
    return _finite("logvar", z).astype(_out_dtype(mdt, ldt, edt))


def beta_schedule(step: int, beta: float, *, schedule: str = "constant", warmup_steps: int = 1000,
                  beta_start: float = 0.0) -> float:
    """β at training ``step``: a warm-up from ``beta_start`` to ``beta`` over ``warmup_steps``.

    ``u = min(1, step / warmup_steps)``; ``"constant"``: ``β``; ``"linear"``:
    ``β₀ + (β − β₀)·u``; ``"cosine"``: ``β₀ + (β − β₀)·(1 − cos(π u))/2`` (slow start and finish).
    After the warm-up β stays at ``beta``. Bowman et al., *Generating sentences from a continuous
    space*, 2016 (KL annealing); Higgins et al., *β-VAE*, 2017.
    """
    step = _integer("step", step, 0)
    beta = _real("beta", beta, 0.0)
    beta_start = _real("beta_start", beta_start, 0.0)
    warmup_steps = _integer("warmup_steps", warmup_steps, 1)
    if schedule not in SCHEDULES:
        raise ConfigurationError(f"schedule: expected one of {SCHEDULES}, got {schedule!r}")
    if schedule == "constant":
        return beta
    u = min(1.0, step / warmup_steps)
    frac = u if schedule == "linear" else 0.5 * (1.0 - math.cos(math.pi * u))
    return beta_start + (beta - beta_start) * frac


# -- the VIB layer -----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class BottleneckOutput:
    """One forward pass of :class:`VariationalBottleneck`.

    ``z (..., z_dim)`` the compressed representation (a sample, or ``μ`` without sampling);
    ``mu, logvar (..., z_dim)`` the encoder's outputs (log-variance already clipped);
    ``noise (..., z_dim)`` the ε used (zeros without sampling); ``kl (...)`` the KL to ``N(0, I)``
    per row; ``beta`` the annealed β of this step; ``kl_loss = beta · mean(kl)``.
    """

    z: np.ndarray
    mu: np.ndarray
    logvar: np.ndarray
    noise: np.ndarray
    kl: np.ndarray
    beta: float
    kl_loss: float


class VariationalBottleneck:
    """The variational information bottleneck layer: encode, sample by reparameterisation, pay β·KL.

    ``μ = x W_μ + b_μ``, ``lv = clip(x W_lv + b_lv, ln min_var, 20)``, ``z = μ + e^{lv/2} ⊙ ε``
    with ``ε ~ N(0, I)``; loss term ``β(step)·mean_rows KL(N(μ, e^{lv}) ‖ N(0, I))``. The clipped
    ``lv`` is used for both the sample and the KL (upstream clips only for sampling). Shapes
    ``x (..., input_dim) → z (..., bottleneck_dim)``.

    Seeds: the weights (``U(−1/√input_dim, 1/√input_dim)``, PyTorch's ``nn.Linear`` default)
    come from ``seed``; the noise of training step ``t`` from ``(seed, t)``, so a forward pass is a
    pure function of ``(x, step)`` and a training run is reproducible (pass ``noise=`` to use your
    own ε). β follows :func:`beta_schedule` (``schedule``, ``warmup_steps``, ``beta_start``);
    upstream has no annealing inside the bottleneck (docs/upstream.md#bottleneck). The parameters are plain
    arrays (``W_mu, b_mu, W_logvar, b_logvar``) that :meth:`gradients` differentiates, so the layer
    can be trained (e.g. ``layer.W_mu -= lr * grads["W_mu"]``).
    Alemi et al., *Deep Variational Information Bottleneck*, 2017.
    """

    PARAMETERS = ("W_mu", "b_mu", "W_logvar", "b_logvar")

    def __init__(self, input_dim: int, bottleneck_dim: int = 64, *, beta: float = 1e-3, schedule: str = "constant",
                 warmup_steps: int = 1000, beta_start: float = 0.0, min_var: float = 1e-4, seed: int = 0,
                 dtype=np.float32):
        self.input_dim = _integer("input_dim", input_dim, 1)
        self.bottleneck_dim = _integer("bottleneck_dim", bottleneck_dim, 1)
        self.min_var = _real("min_var", min_var, 0.0, lo_open=True)
        if self.min_var >= math.exp(20.0):
            raise ConfigurationError(f"min_var: expected a variance below e^20, got {min_var!r}")
        self.seed = _integer("seed", seed, 0)
        if np.dtype(dtype) not in (np.float32, np.float64):
            raise ConfigurationError(f"dtype: expected float32 or float64, got {dtype!r}")
        self.dtype = np.dtype(dtype)
        self.beta, self.schedule, self.warmup_steps, self.beta_start = beta, schedule, warmup_steps, beta_start
        self.beta_at(0)  # validates the schedule arguments
        rng = np.random.default_rng([self.seed, 0])
        bound = 1.0 / math.sqrt(self.input_dim)
        shape_w, shape_b = (self.input_dim, self.bottleneck_dim), (self.bottleneck_dim,)
        self.W_mu = rng.uniform(-bound, bound, shape_w).astype(self.dtype)
        self.b_mu = rng.uniform(-bound, bound, shape_b).astype(self.dtype)
        self.W_logvar = rng.uniform(-bound, bound, shape_w).astype(self.dtype)
        self.b_logvar = rng.uniform(-bound, bound, shape_b).astype(self.dtype)

    def beta_at(self, step: int) -> float:
        """The annealed β of training ``step`` (see :func:`beta_schedule`)."""
        return beta_schedule(step, self.beta, schedule=self.schedule, warmup_steps=self.warmup_steps,
                             beta_start=self.beta_start)

    def parameters(self) -> dict[str, np.ndarray]:
        """The trainable arrays by name (the arrays themselves, not copies)."""
        return {n: getattr(self, n) for n in self.PARAMETERS}

    def _input(self, x) -> np.ndarray:
        a, _ = _vectors("x", x)
        if a.shape[-1] != self.input_dim:
            raise ShapeError(f"x: expected shape (..., {self.input_dim}) (input_dim), got {a.shape}")
        return a

    def _lv_bounds(self) -> tuple[float, float]:
        return math.log(self.min_var), 20.0

    def encode(self, x) -> tuple[np.ndarray, np.ndarray]:
        """``(μ, lv)``, each ``(..., bottleneck_dim)``, ``lv`` clipped to ``[ln min_var, 20]``."""
        a = self._input(x)
        mu, raw = self._heads(a)
        lo, hi = self._lv_bounds()
        dt = self._dtype_for(x)
        return mu.astype(dt), np.clip(raw, lo, hi).astype(dt)

    def _heads(self, a):
        mu = a @ self.W_mu.astype(np.float64) + self.b_mu
        raw = a @ self.W_logvar.astype(np.float64) + self.b_logvar
        return mu, raw

    @staticmethod
    def _dtype_for(x):
        return _out_dtype(np.asarray(x).dtype)

    def noise(self, shape: tuple, step: int = 0) -> np.ndarray:
        """The ε of training ``step`` for a batch of ``shape[:-1]`` rows: ``N(0, I)`` from ``(seed, step)``."""
        step = _integer("step", step, 0)
        return np.random.default_rng([self.seed, 1, step]).standard_normal(tuple(shape))

    def _noise(self, noise, shape, step, sample):
        if not sample:
            return np.zeros(shape)
        if noise is None:
            return self.noise(shape, step)
        e, _ = _vectors("noise", noise)
        if e.shape != shape:
            raise ShapeError(f"noise: expected shape {shape} (rows of x × bottleneck_dim), got {e.shape}")
        return e

    def __call__(self, x, *, step: int = 0, sample: bool = True, noise=None) -> BottleneckOutput:
        """Encode ``x (..., input_dim)``, sample ``z`` (or ``z = μ`` with ``sample=False``), KL and loss."""
        a = self._input(x)
        mu, raw = self._heads(a)
        lo, hi = self._lv_bounds()
        lv = np.clip(raw, lo, hi)
        e = self._noise(noise, mu.shape, step, sample)
        z = mu + np.exp(0.5 * lv) * e
        kl = 0.5 * np.sum(np.expm1(lv) - lv + mu * mu, axis=-1)
        beta = self.beta_at(step)
        dt = self._dtype_for(x)
        _finite("x", z)
        return BottleneckOutput(z.astype(dt), mu.astype(dt), lv.astype(dt), e.astype(dt), kl.astype(dt), beta,
                                float(beta * np.mean(kl)))

    def gradients(self, x, grad_z, *, step: int = 0, sample: bool = True, noise=None) -> dict[str, np.ndarray]:
        """Gradients of ``loss = Σ ⟨grad_z, z⟩ + β(step)·mean_rows KL`` w.r.t. the four parameters.

        ``grad_z (..., bottleneck_dim)`` is the upstream gradient ``∂L_task/∂z`` (e.g. of a
        decoder's loss); the noise is the one :meth:`__call__` uses for the same ``step`` (or
        ``noise``). Through the reparameterisation: ``∂z/∂μ = 1``, ``∂z/∂lv = ½ e^{lv/2} ε``;
        ``∂KL/∂μ = μ``, ``∂KL/∂lv = ½(e^{lv} − 1)``; no gradient flows where ``lv`` is clipped.
        Returns float64 arrays shaped like the parameters.
        """
        a = self._input(x)
        gz, _ = _vectors("grad_z", grad_z)
        mu, raw = self._heads(a)
        if gz.shape != mu.shape:
            raise ShapeError(f"grad_z: expected shape {mu.shape} (rows of x × bottleneck_dim), got {gz.shape}")
        lo, hi = self._lv_bounds()
        lv = np.clip(raw, lo, hi)
        e = self._noise(noise, mu.shape, step, sample)
        rows = max(1, int(np.prod(mu.shape[:-1], dtype=np.int64)))
        beta = self.beta_at(step)
        g_mu = gz + beta * mu / rows
        g_lv = (gz * 0.5 * np.exp(0.5 * lv) * e + beta * 0.5 * np.expm1(lv) / rows) * ((raw > lo) & (raw < hi))
        a2 = a.reshape(-1, self.input_dim)
        g_mu2, g_lv2 = g_mu.reshape(-1, self.bottleneck_dim), g_lv.reshape(-1, self.bottleneck_dim)
        return {"W_mu": a2.T @ g_mu2, "b_mu": g_mu2.sum(axis=0), "W_logvar": a2.T @ g_lv2, "b_logvar": g_lv2.sum(axis=0)}

    def __repr__(self) -> str:
        return (f"VariationalBottleneck(input_dim={self.input_dim}, bottleneck_dim={self.bottleneck_dim}, "
                f"beta={self.beta}, schedule={self.schedule!r}, warmup_steps={self.warmup_steps}, "
                f"min_var={self.min_var}, seed={self.seed})")


# -- attention compression --------------------------------------------------------------------------------

@dataclass(frozen=True)
class CompressedAttention:
    """Result of :func:`compress_attention`; per-row arrays have the rows' shape ``(...)``.

    ``weights (..., n)`` the compressed rows; ``rate = KL(r ‖ u)`` (bits of key choice kept, in
    nats, ``u`` uniform over the allowed keys), ``distortion = KL(r ‖ w)``,
    ``objective = distortion + β·rate`` (what ``r`` minimises) and ``rate_before = KL(w ‖ u)``
    (upstream's "kl", of the input rows).
    """

    weights: np.ndarray
    rate: np.ndarray
    distortion: np.ndarray
    objective: np.ndarray
    rate_before: np.ndarray
    beta: float


def compress_attention(weights, beta: float, *, mask=None) -> CompressedAttention:
    """Compress attention rows with the information-bottleneck trade-off between fidelity and rate.

    Each row ``w`` (a distribution over keys) becomes
    ``r* = argmin_r KL(r ‖ w) + β·KL(r ‖ u) = w^{1/(1+β)} / Σ w^{1/(1+β)}``
    (stationarity of the Lagrangian: ``(1+β)(ln r + 1) − ln w + const = 0``), ``u`` uniform over
    the allowed keys: ``β = 0`` keeps ``w``, ``β → ∞`` gives ``u`` restricted to the support of
    ``w``. The result reports the rate and the distortion of the compressed rows (upstream reports
    only ``KL(w ‖ u)`` of the input, docs/upstream.md#bottleneck); upstream's temperature ``T ≥ 1`` is
    ``β = T − 1`` (``T < 1`` sharpens, which no ``β ≥ 0`` trade-off does).
    ``weights (..., n)`` rows summing to 1 (or all-zero rows: nothing to attend, kept at 0);
    ``mask`` boolean, broadcastable, True = allowed (masked keys must carry weight 0; default:
    every key allowed). Computed in the log domain. Tishby et al. 1999.
    """
    w = as_distribution(weights, "weights", allow_zero_rows=True)
    wdt = np.asarray(weights).dtype
    b = _real("beta", beta, 0.0)
    if mask is None:
        ok = np.ones(w.shape, bool)
    else:
        m = np.asarray(mask)
        if m.dtype != np.bool_:
            raise ShapeError(f"mask: expected a boolean array (True = allowed), got dtype {m.dtype}")
        try:
            ok = np.broadcast_to(m, w.shape)
        except ValueError:
            raise ShapeError(f"mask: expected a shape broadcastable to {w.shape} (weights), got {m.shape}") from None
        if (w[~ok] != 0).any():
            raise DataError("weights: masked keys (mask False) must carry weight 0")
    alpha = 1.0 / (1.0 + b)
    sup = w > 0
    with np.errstate(divide="ignore"):
        logw = np.where(sup, np.log(np.where(sup, w, 1.0)), -np.inf)
    s = alpha * logw
    mx = np.max(s, axis=-1, keepdims=True)
    mx = np.where(np.isfinite(mx), mx, 0.0)
    e = np.where(sup, np.exp(s - mx), 0.0)
    tot = e.sum(axis=-1, keepdims=True)
    r = np.divide(e, tot, out=np.zeros_like(e), where=tot > 0)
    n_ok = ok.sum(axis=-1)
    nonempty = w.sum(axis=-1) > 0
    log_n = np.log(np.maximum(n_ok, 1))

    def neg_entropy(x):
        from scipy.special import xlogy

        return np.sum(xlogy(x, x), axis=-1)

    rate = np.where(nonempty, np.maximum(log_n + neg_entropy(r), 0.0), 0.0)
    rate_before = np.where(nonempty, np.maximum(log_n + neg_entropy(w), 0.0), 0.0)
    distortion = _kl_cat(r, w)
    dt = np.float64 if wdt == np.float64 else np.float32
    return CompressedAttention(r.astype(dt), rate.astype(dt), distortion.astype(dt),
                               (distortion + b * rate).astype(dt), rate_before.astype(dt), b)
