"""First-order optimisers that update NumPy parameters in place: SGD (momentum, Nesterov), Adam, AdamW.

``step(params, grads)`` takes one array or a sequence of arrays (and the matching gradients) and
updates each parameter in place; the optimiser keeps one state per parameter, by position, created
on the first step. The updates are the textbook ones, written as PyTorch's ``torch.optim`` writes
them, so the same problem gives the same trajectory.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from workbench.errors import ConfigurationError, NumericalError, ShapeError
from workbench import checks as C


def _as_list(x) -> list:
    if isinstance(x, np.ndarray):
        return [x]
    if isinstance(x, Sequence) and not isinstance(x, (str, bytes)):
        return list(x)
    return [x]


class Optimizer:
    """Base class: learning rate, per-parameter state, in-place ``step(params, grads)``."""

    # -- learning rate (the seed system's names and a checked attribute) --------------------------------------------
    lr = C.Checked(C.positive)  # lr > 0, checked on every assignment

    def __init__(self, lr: float) -> None:
        self.lr = lr
        self._shapes: list | None = None
        self.state: list[dict] = []
        self.steps = 0

    def learning_rate(self) -> float:
        """The current learning rate."""
        return self._lr

    def set_learning_rate(self, lr: float) -> None:
        """Set the learning rate (``lr > 0``); the state is kept."""
        self.lr = lr

    def reset(self) -> None:
        """Forget every per-parameter state (momenta, moments, step counts)."""
        self._shapes = None
        self.state = []
        self.steps = 0

    # -- stepping --------------------------------------------------------------------------------------------------
    def _pairs(self, params, grads):
        ps, gs = _as_list(params), _as_list(grads)
        if len(ps) != len(gs):
            raise ShapeError(f"grads: expected {len(ps)} gradient(s), one per parameter, got {len(gs)}")
        if not ps:
            raise ShapeError("params: expected at least one parameter array, got none")
        out = []
        for i, (p, g) in enumerate(zip(ps, gs)):
            where = f"params[{i}]" if len(ps) > 1 else "params"
            if not isinstance(p, np.ndarray) or p.dtype not in (np.float32, np.float64):
                kind = p.dtype if isinstance(p, np.ndarray) else type(p).__name__
                raise ConfigurationError(
                    f"{where}: expected a float32/float64 numpy array (updated in place), got {kind}")
            if not p.flags.writeable:
                raise ConfigurationError(f"{where}: expected a writeable array (updated in place), got a read-only one")
            C.float_array(where, p, min_ndim=0)  # finite
            ga = C.float_array(where.replace("params", "grads"), g, min_ndim=0)
            if ga.shape != p.shape:
                raise ShapeError(f"{where.replace('params', 'grads')}: expected shape {p.shape} (the parameter's), "
                                 f"got shape {ga.shape}")
            out.append((p, ga.astype(p.dtype, copy=False)))
        shapes = [p.shape for p, _ in out]
        if self._shapes is None:
            self._shapes = shapes
            self.state = [self._init_state(p) for p, _ in out]
        elif shapes != self._shapes:
            raise ShapeError(
                f"params: this optimiser holds state for parameters of shapes {self._shapes}, got {shapes}; "
                f"call reset() (or use a new optimiser) for other parameters")
        return out

    def step(self, params, grads) -> None:
        """One update of every parameter, in place (``θ ← θ − Δ``).

        A step whose update ``Δ`` is not finite (an overflow) raises :class:`NumericalError` and
        leaves that parameter unchanged; the optimiser state may then be spoiled: ``reset()``.
        """
        pairs = self._pairs(params, grads)
        self.steps += 1
        for i, ((p, g), st) in enumerate(zip(pairs, self.state)):
            with np.errstate(over="ignore", invalid="ignore"):
                delta = self._delta(p, g, st)
            if not np.isfinite(delta).all():
                where = f"params[{i}]" if len(pairs) > 1 else "params"
                raise NumericalError(f"{where}: the update left the finite range (gradients too large for "
                                     f"{p.dtype}); the parameter is unchanged, call reset() before continuing")
            p -= delta

    def _init_state(self, p: np.ndarray) -> dict:
        raise NotImplementedError

    def _delta(self, p: np.ndarray, g: np.ndarray, st: dict) -> np.ndarray:
        """The update ``Δ`` (the parameter becomes ``θ − Δ``); updates the state in place."""
        raise NotImplementedError


class SGD(Optimizer):
    """Stochastic gradient descent with momentum, Nesterov momentum and L2 weight decay.

    ``g' = g + λθ``; ``v ← μv + g'``; ``θ ← θ − lr·(g' + μv)`` (Nesterov) or ``θ ← θ − lr·v``
    (``μ = 0``: plain ``θ ← θ − lr·g'``). Defaults as the seed system: ``μ = 0, λ = 0``, no Nesterov.
    Paper: Sutskever et al., *On the importance of initialization and momentum in deep learning*, 2013.
    """

    def __init__(self, lr: float, momentum: float = 0.0, weight_decay: float = 0.0, nesterov: bool = False) -> None:
        super().__init__(lr)
        self.momentum = C.real("momentum", momentum, low=0.0, high=1.0, high_open=True)
        self.weight_decay = C.non_negative("weight_decay", weight_decay)
        if not isinstance(nesterov, bool):
            raise ConfigurationError(f"nesterov: expected True or False, got {nesterov!r}")
        if nesterov and self.momentum == 0:
            raise ConfigurationError("nesterov: Nesterov momentum needs momentum > 0, got momentum=0")
        self.nesterov = nesterov

    def _init_state(self, p):
        return {"velocity": np.zeros_like(p)}

    def _delta(self, p, g, st):
        if self.weight_decay:
            g = g + self.weight_decay * p
        if self.momentum:
            v = st["velocity"]
            v *= self.momentum
            v += g
            g = g + self.momentum * v if self.nesterov else v
        return self._lr * g


class Adam(Optimizer):
    """Adam with bias correction and classic L2 weight decay (added to the gradient).

    ``g' = g + λθ``; ``t ← t+1``; ``m ← β₁m + (1−β₁)g'``; ``v ← β₂v + (1−β₂)g'²``;
    ``θ ← θ − lr·m̂/(√v̂ + ε)`` with ``m̂ = m/(1−β₁ᵗ)``, ``v̂ = v/(1−β₂ᵗ)``.
    Defaults ``β = (0.9, 0.999), ε = 1e-8, λ = 0``. Do better than upstream (docs/upstream.md#training): the decay
    enters the gradient (L2, as ``torch.optim.Adam``), not after the adaptive step.
    Paper: Kingma & Ba, *Adam: A Method for Stochastic Optimization*, 2015.
    """

    decoupled = False

    def __init__(self, lr: float = 1e-3, betas: tuple = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.0) -> None:
        super().__init__(lr)
        if not (isinstance(betas, Sequence) and len(betas) == 2):
            raise ConfigurationError(f"betas: expected a pair (beta1, beta2), got {betas!r}")
        self.beta1 = C.real("betas[0]", betas[0], low=0.0, high=1.0, high_open=True)
        self.beta2 = C.real("betas[1]", betas[1], low=0.0, high=1.0, high_open=True)
        self.eps = C.positive("eps", eps)
        self.weight_decay = C.non_negative("weight_decay", weight_decay)

    def _init_state(self, p):
        return {"t": 0, "m": np.zeros_like(p), "v": np.zeros_like(p)}

    def _delta(self, p, g, st):
        decay = None
        if self.weight_decay:
            if self.decoupled:
                decay = (self._lr * self.weight_decay) * p  # θ(1 − lr·λ) = θ − lr·λ·θ
            else:
                g = g + self.weight_decay * p
        st["t"] += 1
        t, m, v = st["t"], st["m"], st["v"]
        m *= self.beta1
        m += (1.0 - self.beta1) * g
        v *= self.beta2
        v += (1.0 - self.beta2) * g * g
        step_size = self._lr / (1.0 - self.beta1 ** t)
        denom = np.sqrt(v) / np.sqrt(1.0 - self.beta2 ** t) + self.eps
        delta = step_size * (m / denom)
        return delta if decay is None else decay + delta


class AdamW(Adam):
    """AdamW: Adam with decoupled weight decay ``θ ← θ(1 − lr·λ)`` before the adaptive step.

    Then exactly Adam's ``θ ← θ − lr·m̂/(√v̂ + ε)`` on the raw gradient. Defaults
    ``β = (0.9, 0.999), ε = 1e-8, λ = 0.01`` (the seed system's and PyTorch's).
    Paper: Loshchilov & Hutter, *Decoupled Weight Decay Regularization*, 2019.
    """

    decoupled = True

    def __init__(self, lr: float = 1e-3, betas: tuple = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.01) -> None:
        super().__init__(lr, betas, eps, weight_decay)


__all__ = ["Optimizer", "SGD", "Adam", "AdamW"]
