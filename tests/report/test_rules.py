"""The decision list, its fitted thresholds and their leave-one-out validation."""
from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from workbench.report.recommend import THRESHOLDS
from workbench.report.rules import FITTED, RULES, decide, fit_thresholds, leave_one_out, regret

BASE = {"sequence_locality": 0.06, "window_fraction": 1.0, "gromov_delta": 0.3, "h0_ratio": 1.0,
        "norm_share": 0.1, "key_roughness": 0.1, "structure_contrast": 0.9, "n_keys": 500}


def case(name, scores, **features):
    return {"name": name, "features": {**BASE, **features}, "scores": scores}


def test_the_first_rule_that_holds_decides():
    assert decide(BASE, THRESHOLDS) == ("Standard", None)
    choice, rule = decide({**BASE, "sequence_locality": 0.9, "window_fraction": 0.05, "norm_share": 0.0}, THRESHOLDS)
    assert (choice, rule.name) == ("Sparse", "sequence")  # before the sphere rule
    assert decide({**BASE, "norm_share": 0.0}, THRESHOLDS)[1].name == "sphere"
    assert decide({**BASE, "norm_share": 2.0}, THRESHOLDS)[1].name == "norms"
    assert decide({**BASE, "key_roughness": 0.6, "structure_contrast": 0.2}, THRESHOLDS)[0] == "Diffusion"
    assert decide({**BASE, "n_keys": 3, "norm_share": 0.0}, THRESHOLDS)[0] == "Standard"
    assert set(FITTED) == {c[2] for r in RULES for c in r.conditions} and all(n in THRESHOLDS for n in FITTED)
    text = RULES[0].describe({**BASE, "sequence_locality": 0.9, "window_fraction": 0.05}, THRESHOLDS)
    assert text.startswith("sequence_locality = 0.9 >= 0.5 and window_fraction = 0.05 <= 0.25:")


def test_fitting_moves_a_threshold_to_where_the_evidence_is():
    # Diffusion wins clearly on the two rough sets; Standard on the smoother ones
    cases = [case("a", {"Standard": 0.70, "Diffusion": 0.90}, key_roughness=0.40, structure_contrast=0.2),
             case("b", {"Standard": 0.70, "Diffusion": 0.85}, key_roughness=0.35, structure_contrast=0.3),
             case("c", {"Standard": 0.90, "Diffusion": 0.60}, key_roughness=0.20, structure_contrast=0.3),
             case("d", {"Standard": 0.90, "Diffusion": 0.70}, key_roughness=0.10, structure_contrast=0.3)]
    start = {**THRESHOLDS, "diffusion_roughness": 0.5}  # too strict: a and b get Standard
    assert sum(regret(c, start) for c in cases) == pytest.approx(0.35)
    th = fit_thresholds(cases, start)
    assert th["diffusion_roughness"] == pytest.approx((0.35 + 0.20) / 2)  # the midpoint nearest the start
    assert sum(regret(c, th) for c in cases) == 0.0
    assert {k: v for k, v in th.items() if k != "diffusion_roughness"} == \
        {k: v for k, v in start.items() if k != "diffusion_roughness"}


def test_regret_within_the_tolerance_does_not_move_thresholds():
    cases = [case("a", {"Standard": 0.700, "Geometric": 0.710}, norm_share=0.5),
             case("b", {"Standard": 0.700, "Geometric": 0.690}, norm_share=0.1)]
    assert fit_thresholds(cases, THRESHOLDS)["geometric_norm_share"] == THRESHOLDS["geometric_norm_share"]


def test_leave_one_out_never_sees_the_case_it_scores():
    cases = [case("a", {"Standard": 0.7, "Diffusion": 0.9}, key_roughness=0.40, structure_contrast=0.2),
             case("b", {"Standard": 0.7, "Diffusion": 0.9}, key_roughness=0.35, structure_contrast=0.2),
             case("c", {"Standard": 0.9, "Diffusion": 0.6}, key_roughness=0.20, structure_contrast=0.2)]
    out = leave_one_out(cases, {**THRESHOLDS, "diffusion_roughness": 0.5})
    assert [r["name"] for r in out] == ["a", "b", "c"]
    # without "a", the threshold sits between b (0.35) and c (0.20); "a" (0.40) is above it
    assert out[0]["thresholds"]["diffusion_roughness"] == pytest.approx(0.275) and out[0]["choice"] == "Diffusion"
    assert all(math.isfinite(r["regret"]) for r in out)


def test_the_shipped_thresholds_are_the_fit_on_the_saved_evidence():
    """benchmarks/recommendation_cases.json holds the evaluation of 13 data sets
    (python -m benchmarks.recommendation); the shipped thresholds are what fitting them gives,
    and leave-one-data-set-out they keep the shipped real sets within 0.02 of the best candidate."""
    path = Path(__file__).resolve().parents[2] / "benchmarks" / "recommendation_cases.json"
    cases = json.loads(path.read_text())
    assert len(cases) >= 8 and sum(c["kind"] == "real" for c in cases) >= 3
    fitted = fit_thresholds(cases, THRESHOLDS)
    assert {k: fitted[k] for k in FITTED} == pytest.approx({k: THRESHOLDS[k] for k in FITTED})
    loo = {r["name"]: r for r in leave_one_out(cases, THRESHOLDS)}
    for name in ("scipy_api", "python_stdlib", "digits"):
        assert loo[name]["regret"] <= 0.02, loo[name]
