"""Evidence for the recommendation: every candidate mechanism, calibrated, run and scored on the keys.

:func:`evaluate` runs each candidate as self-attention over a sample of the keys (``q = k = v``,
the setting of :mod:`workbench.report.downstream`), each calibrated on that sample
(:func:`workbench.calibrate`, target 0.5; the recommended mechanism keeps the report's own
calibration when the report was made of these very keys, so it is not calibrated twice), and
scores its output:

* **with labels** — leave-one-out ``k``-NN label accuracy of the outputs
  (:func:`~workbench.report.downstream.knn_label_accuracy`, ``k = 5``): does attention keep the
  classes apart?
* **without labels** — *denoising neighbour recall*: the keys are perturbed by isotropic Gaussian
  noise whose expected norm is the median distance from a key to its nearest neighbour, each
  mechanism attends over the noisy keys, and the score is the mean fraction of each key's
  ``k`` nearest neighbours among the *clean* keys (held out: the mechanism never sees them) that
  are among its ``k`` nearest neighbours in the output. Attention that averages each key with
  its true neighbours recovers them; attention that averages with unrelated keys does not.

Candidates (default): the report's four choices — ``scaled_dot_product`` (Standard),
``local_global`` (Sparse, the rule's window), ``hyperbolic`` (Geometric) and ``diffusion``
(Diffusion, the rule's graph and time) — each with the structural parameters the report's rules
would give it, then calibrated. ``raw`` scores the (noisy) keys themselves, for reference.
The sample is evenly strided rows (``sample`` of them), which keeps the row order's structure
(sequences) and every part of the data.

:class:`Evaluation` holds the table, the recommended and the best candidate, and the regret:
the best score minus the recommended one's (0 when the recommendation is the best).
"""
from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from workbench.errors import ConfigurationError, ShapeError, WorkbenchError

__all__ = ["Evaluation", "evaluate", "evaluate_grid", "grid_table", "candidates", "denoising_recall", "strided_sample"]

#: The default sample size (keys scored per candidate), and the most allowed (every candidate runs
#: self-attention over the sample: 10,000² pairs is already tens of seconds for some).
DEFAULT_SAMPLE = 2000
MAX_SAMPLE = 10_000


def strided_sample(n: int, size: int) -> np.ndarray:
    """``min(size, n)`` evenly spaced row indices of ``0..n−1`` (all rows when ``n ≤ size``)."""
    if n <= size:
        return np.arange(n)
    return np.unique(np.linspace(0, n - 1, size).round().astype(np.int64))


def _neighbours(x: np.ndarray, k: int) -> np.ndarray:
    from workbench.graph import knn_graph

    n = x.shape[0]
    g = knn_graph(np.asarray(x, dtype=np.float64), k)
    return np.asarray(g.src).reshape(n, k)


def denoising_recall(z, clean, k: int = 10) -> float:
    """Mean over rows of ``|kNN_z(i) ∩ kNN_clean(i)| / k`` (Euclidean, self excluded)."""
    z, clean = np.asarray(z), np.asarray(clean)
    if z.shape[0] != clean.shape[0]:
        raise ShapeError(f"z: expected {clean.shape[0]} rows (one per clean key), got {z.shape[0]}")
    kk = min(int(k), z.shape[0] - 1)
    a, b = _neighbours(z, kk), _neighbours(clean, kk)
    hits = (a[:, :, None] == b[:, None, :]).any(axis=2).sum(axis=1)
    return float(np.mean(hits / kk))


def candidates(report) -> list[tuple[str, str, dict]]:
    """``[(choice, mechanism, structural params), …]`` of the report's four choices for its keys."""
    from workbench.report.recommend import _MECHANISM, _diffusion_params, _sparse_params, mechanism_for

    f = report.features
    n = int(f.get("n_keys", report.n_keys))
    k = int(report.settings.get("k", 8))
    structure = {
        "Standard": {},
        "Sparse": _sparse_params(int(f.get("index_gap_p90", 0)), n),
        "Geometric": {},
        "Diffusion": _diffusion_params(float(f.get("pc_roughness", 0.0)), k, n),
    }
    out = []
    for choice in ("Standard", "Sparse", "Geometric", "Diffusion"):
        name, notes = mechanism_for(choice)
        if name == _MECHANISM[choice]:
            out.append((choice, name, structure[choice]))
    return out


@dataclass(frozen=True)
class Evaluation:
    """The scored candidates (see the module docstring).

    ``rows``: one dict per candidate — ``choice``, ``mechanism``, ``params`` (calibrated, as
    ``make`` takes them), ``temperature``, ``entropy`` (calibrated, mean ``H/ln n``), ``score``,
    ``seconds``, ``error`` — plus a ``raw`` row (the keys themselves); ``measure``
    ("knn_accuracy" | "denoising_recall"); ``recommended`` the report's choice; ``best`` the
    highest-scoring candidate's choice; ``regret`` best score − recommended score; ``sample``
    rows scored out of ``n_keys``; ``cancelled`` when stopped early.
    """

    rows: list
    measure: str
    recommended: str | None
    best: str | None
    regret: float | None
    sample: int
    n_keys: int
    cancelled: bool = False
    notes: tuple = field(default_factory=tuple)

    def score_of(self, choice: str) -> float | None:
        for r in self.rows:
            if r["choice"] == choice:
                return r["score"]
        return None

    def table(self) -> list[dict]:
        """The rows, best first, each with ``recommended`` and ``best`` flags (for display)."""
        ranked = sorted(self.rows, key=lambda r: -(r["score"] if r["score"] is not None else -math.inf))
        return [{**r, "recommended": r["choice"] == self.recommended, "best": r["choice"] == self.best}
                for r in ranked]

    def to_dict(self) -> dict:
        from workbench.report.records import plain

        return plain({"rows": self.rows, "measure": self.measure, "recommended": self.recommended,
                      "best": self.best, "regret": self.regret, "sample": self.sample, "n_keys": self.n_keys,
                      "cancelled": self.cancelled, "notes": list(self.notes)})


def _check_labels(labels, n: int):
    if labels is None:
        return None
    y = np.asarray(labels)
    if y.shape != (n,):
        raise ShapeError(f"labels: expected shape ({n},) (one per key), got {y.shape}")
    return y


def evaluate(keys, labels=None, *, mechanisms=None, sample: int = DEFAULT_SAMPLE, k: int | None = None,
             target_entropy: float = 0.5, report=None, seed: int = 0,
             progress: Callable[[int, int], None] | None = None,
             cancel: threading.Event | None = None, client=None) -> Evaluation:
    """Run each candidate mechanism, calibrated, on a sample of ``keys (n, d)`` and score it.

    ``labels (n,)`` (optional) select the measure (see the module docstring); ``mechanisms``:
    None for the report's four choices, or a list of registry names and ``(name, params)``
    pairs (each scored under its own name); ``sample`` rows (100–10,000) evenly strided;
    ``k`` neighbours of the score (5 with labels, 10 without); ``target_entropy`` of the
    calibration; ``report`` the :func:`~workbench.report.analyze_keys` report of the keys (its
    recommendation is marked, its features give the candidates' structure; computed on the sample
    when None); ``seed`` of the noise and samples; ``progress(i, total)`` after each candidate;
    ``cancel`` stops between candidates (the rows so far are returned, ``cancelled`` set).
    ``client``: a :class:`distributed.Client` to run the candidates on, one Dask task each
    (:func:`workbench.distributed.run_grid`; progress as they finish, cancel drops the pending
    ones); None runs them here, one after the other.
    """
    setup = _setup(keys, labels, sample, k, report, seed)
    cells = _cells(setup, mechanisms, target_entropy, seed)
    rows, cancelled = _run_cells(cells, client, progress, cancel)
    return _evaluation(setup, rows, cancelled, mechanisms)


def _setup(keys, labels, sample, k, report, seed) -> dict:
    """The sample, what the mechanisms see, the measure and the report of one data set."""
    from workbench.report.persistence import points

    x = points(keys, "keys")
    n = x.shape[0]
    if n < 10:
        raise ShapeError(f"keys: evaluation needs at least 10 keys, got {n}")
    y = _check_labels(labels, n)
    if isinstance(sample, bool) or not isinstance(sample, (int, np.integer)) or not 100 <= sample <= MAX_SAMPLE:
        raise ConfigurationError(f"sample: expected an integer in [100, {MAX_SAMPLE}], got {sample!r}")
    idx = strided_sample(n, int(sample))
    xs = x[idx]
    ys = None if y is None else y[idx]
    kk = (5 if ys is not None else 10) if k is None else int(k)
    if not 1 <= kk < xs.shape[0]:
        raise ConfigurationError(f"k: expected an integer in [1, {xs.shape[0] - 1}], got {k!r}")
    rng = np.random.default_rng(seed)
    if ys is None:  # the keys the mechanisms see are noisy; the clean ones are held out
        nn = _neighbours(xs, 1)
        med = float(np.median(np.linalg.norm(xs - xs[nn[:, 0]], axis=1)))
        noise = rng.standard_normal(xs.shape) * (med / math.sqrt(xs.shape[1]))
        seen = (xs + noise).astype(xs.dtype)
        measure = "denoising_recall"
    else:
        seen = xs
        measure = "knn_accuracy"
    if report is None:
        from workbench.report import analyze_keys

        report = analyze_keys(seen)
    rows = [{"choice": "raw", "mechanism": "(the keys themselves)", "params": {}, "temperature": None,
             "entropy": None, "score": _score(measure, seen, xs, ys, kk), "seconds": 0.0, "error": None}]
    return {"seen": seen, "clean": xs, "labels": ys, "k": kk, "measure": measure, "report": report, "rows": rows,
            "sample": int(idx.size), "n": n}


def _cells(setup: dict, mechanisms, target_entropy: float, seed: int) -> list[dict]:
    """One cell (keyword arguments of :func:`_candidate_row`) per candidate mechanism."""
    report, seen = setup["report"], setup["seen"]
    if mechanisms is None:
        cands = candidates(report)
    else:
        cands = []
        for m in mechanisms:
            name, params = (m, {}) if isinstance(m, str) else (m[0], dict(m[1]))
            cands.append((name, name, params))
    cells = []
    for choice, name, structure in cands:
        fit = _reusable_fit(report, choice, name, structure, seen, target_entropy) if mechanisms is None else None
        cells.append({"choice": choice, "name": name, "structure": dict(structure), "seen": seen,
                      "target": target_entropy, "seed": seed, "fit": fit, "measure": setup["measure"],
                      "clean": setup["clean"], "labels": setup["labels"], "k": setup["k"]})
    return cells


def _score(measure: str, z, clean, labels, k: int) -> float:
    from workbench.report.downstream import knn_label_accuracy

    return denoising_recall(z, clean, k) if measure == "denoising_recall" else knn_label_accuracy(z, labels, k)


def _candidate_row(choice, name, structure, seen, target, seed, fit, measure, clean, labels, k) -> dict:
    """One candidate calibrated, run and scored: its row of the table (errors in ``error``)."""
    row = {"choice": choice, "mechanism": name, "params": dict(structure), "temperature": None, "entropy": None,
           "score": None, "seconds": None, "error": None}
    t0 = time.perf_counter()
    try:
        row.update(_run_candidate(name, structure, seen, target, seed, fit))
        row["score"] = _score(measure, row.pop("output"), clean, labels, k)
    except WorkbenchError as exc:
        row["error"] = str(exc)
    except MemoryError:
        row["error"] = f"{name}: out of memory on {seen.shape[0]} keys"
    row["seconds"] = time.perf_counter() - t0
    return row


def _run_cells(cells: list, client, progress, cancel) -> tuple[list, bool]:
    """The rows of ``cells`` in their order (None where cancelled before it ran) and whether any was:
    here one by one, or as Dask tasks on ``client``."""
    if client is not None:
        from workbench.distributed.grid import GridFailure, run_grid

        got = run_grid(_candidate_row, cells, client=client, progress=progress, cancel=cancel)
        rows = [{"choice": c["choice"], "mechanism": c["name"], "params": c["structure"], "temperature": None,
                 "entropy": None, "score": None, "seconds": None, "error": str(r)} if isinstance(r, GridFailure)
                else r for c, r in zip(cells, got)]
        return rows, any(r is None for r in rows)
    rows: list = [None] * len(cells)
    for i, cell in enumerate(cells):
        if cancel is not None and cancel.is_set():
            return rows, True
        rows[i] = _candidate_row(**cell)
        if progress is not None:
            progress(i + 1, len(cells))
    return rows, False


def _evaluation(setup: dict, cand_rows: list, cancelled: bool, mechanisms) -> "Evaluation":
    rows = setup["rows"] + [r for r in cand_rows if r is not None]
    scored = [r for r in rows[1:] if r["score"] is not None]
    best = max(scored, key=lambda r: r["score"])["choice"] if scored else None
    rec = setup["report"].recommendation.choice if mechanisms is None else None
    regret = None
    if rec is not None and best is not None:
        rec_score = next((r["score"] for r in scored if r["choice"] == rec), None)
        regret = None if rec_score is None else max(0.0, max(r["score"] for r in scored) - rec_score)
    return Evaluation(rows, setup["measure"], rec, best, regret, setup["sample"], setup["n"], cancelled)


def evaluate_grid(datasets: dict, *, mechanisms=None, sample: int = DEFAULT_SAMPLE, k: int | None = None,
                  target_entropy: float = 0.5, seed: int = 0, client=None,
                  progress: Callable[[int, int], None] | None = None,
                  cancel: threading.Event | None = None) -> dict:
    """:func:`evaluate` of several data sets at once: every candidate × data set one cell.

    ``datasets``: ``name → keys`` or ``name → (keys, labels)``. Each data set's sample, noise and
    report are made here; then all cells run together (as Dask tasks on ``client``, else one
    after the other). Returns ``name → Evaluation``; :func:`grid_table` joins them into one table.
    """
    if not isinstance(datasets, dict) or not datasets:
        raise ConfigurationError("datasets: expected a non-empty dict of name → keys or (keys, labels)")
    setups, cells, owner = {}, [], []
    for name, d in datasets.items():
        keys, labels = d if isinstance(d, tuple) else (d, None)
        setups[name] = _setup(keys, labels, sample, k, None, seed)
        for c in _cells(setups[name], mechanisms, target_entropy, seed):
            cells.append(c)
            owner.append(name)
    rows, cancelled = _run_cells(cells, client, progress, cancel)
    by: dict = {name: [] for name in datasets}
    for name, r in zip(owner, rows):
        by[name].append(r)
    return {name: _evaluation(setups[name], by[name], cancelled, mechanisms) for name in datasets}


def grid_table(evaluations: dict) -> list[dict]:
    """One table of several :class:`Evaluation`: each row with its ``dataset``."""
    return [{"dataset": name, **row} for name, ev in evaluations.items() for row in ev.table()]


def _reusable_fit(report, choice: str, name: str, structure: dict, x: np.ndarray, target: float):
    """The recommendation's calibration record when it fits this candidate on ``x``, else None.

    It fits when it is the recommended choice's mechanism, calibrated to ``target`` on the very keys
    ``x`` (same values, by :func:`~workbench.calibration.keys_digest`) with the candidate's
    structural parameters; then calibrating again would only redo the report's work (with another
    sample seed).
    """
    from workbench.calibration import keys_digest
    from workbench.registry import make

    rec = report.recommendation
    fit = rec.fitted
    if rec.choice != choice or fit is None or fit.mechanism != name or fit.target != target \
            or fit.n_keys != x.shape[0] or fit.keys_digest != keys_digest(x):
        return None
    built = make(name, **fit.params)
    return fit if all(getattr(built, p) == v for p, v in structure.items()) else None


def _run_candidate(name: str, structure: dict, x: np.ndarray, target: float, seed: int, fit=None) -> dict:
    """Calibrate ``name`` on ``x`` (with ``structure``), or build it from the calibration record ``fit``
    (see :func:`_reusable_fit`), and run it as self-attention, with its graph."""
    from workbench.autograph import call_with_graph
    from workbench.calibration import calibrate
    from workbench.registry import make, registry

    if fit is None:
        mech = calibrate(name, x, target_entropy=target, sample_seed=seed, **structure)
        cal = mech.calibration
    else:
        mech, cal = make(name, **fit.params), fit
    info = registry[name]
    out, _, _, _ = call_with_graph(lambda kw: mech(x, x, x, **kw), info, x, None, "auto", 8, seed)
    return {"params": dict(cal.params), "temperature": cal.temperature, "entropy": cal.entropy,
            "output": np.asarray(out)}
