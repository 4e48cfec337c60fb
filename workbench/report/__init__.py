"""The unified report: six health metrics, a health score and a recommended mechanism.

>>> import numpy as np
>>> from workbench.report import analyze_keys
>>> r = analyze_keys(np.random.default_rng(0).standard_normal((500, 32)))
>>> r.recommendation.choice, r.recommendation.mechanism
('Standard', 'scaled_dot_product')

Public API (stable): :func:`analyze_keys` ``(K, *, profile="default", k=8, seed=1) -> Report``,
:func:`build_report` ``(q, K, weights=None, ib_mean=None, ib_logvar=None, profile="default", ...)``,
:class:`Report` (``metrics``, ``health_score``, ``recommendation``, ``to_dict()``, ``to_json()``),
:class:`MetricValue` (``name value direction status score healthy warning critical``),
:class:`Recommendation` (``choice mechanism rule numbers temperature_advice explanation params calibration``),
:func:`evaluate` ``(keys, labels=None, *, mechanisms=None, sample=2000, …) -> Evaluation`` (the
candidates, calibrated, run and scored: the evidence behind the recommendation).
Modules: :mod:`~workbench.report.metrics` (thresholds, status, score),
:mod:`~workbench.report.profiles` (default and compat numbers), :mod:`~workbench.report.persistence`
(H0), :mod:`~workbench.report.features` and :mod:`~workbench.report.recommend` (the decision),
:mod:`~workbench.report.build` (the values), :mod:`~workbench.report.records` (records, JSON),
:mod:`~workbench.report.suite` (the labelled suite) and :mod:`~workbench.report.downstream`
(validation of the recommendation on the suite's labels).
"""
from __future__ import annotations

from workbench.report.build import analyze_keys, build_report
from workbench.report.evaluate import Evaluation, evaluate, evaluate_grid, grid_table
from workbench.report.metrics import HIGHER_IS_WORSE, LOWER_IS_WORSE, MetricSpec, MetricValue
from workbench.report.profiles import METRIC_NAMES, PROFILES, profile_specs
from workbench.report.records import CHOICES, Recommendation, Report

__all__ = ["analyze_keys", "build_report", "evaluate", "evaluate_grid", "grid_table", "Evaluation", "Report", "Recommendation", "MetricValue", "MetricSpec",
           "HIGHER_IS_WORSE", "LOWER_IS_WORSE", "METRIC_NAMES", "PROFILES", "CHOICES", "profile_specs"]
