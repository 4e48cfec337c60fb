"""Schedules at their boundary points, against the formulas written out here, and the seed
system's behavioural tests."""
from __future__ import annotations

import math

import numpy as np
import pytest

from workbench.errors import ConfigurationError
from workbench.training import (
    SGD,
    CurriculumScheduler,
    CurriculumStage,
    TemperatureAnnealing,
    WarmupCosineSchedule,
    default_curriculum,
)


# -- warm-up + cosine ---------------------------------------------------------------------------------------------
def test_warmup_cosine_boundaries():
    s = WarmupCosineSchedule(1.0, warmup_steps=10, decay_steps=100, min_lr=0.1)
    assert s.lr_at(0) == pytest.approx(0.1)  # (0 + 1)/10
    assert s.lr_at(9) == pytest.approx(1.0)  # last warm-up step reaches the peak
    assert s.lr_at(10) == pytest.approx(1.0)  # cosine starts at the peak
    assert s.lr_at(60) == pytest.approx(0.1 + 0.9 * 0.5)  # half-way: the mean
    assert s.lr_at(110) == pytest.approx(0.1)  # end of decay
    assert s.lr_at(10_000) == pytest.approx(0.1)  # and stays there
    for step in (23, 47, 99):
        p = (step - 10) / 100
        assert s.lr_at(step) == pytest.approx(0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * p)), rel=1e-14)


def test_warmup_cosine_monotone_pieces():
    s = WarmupCosineSchedule(1e-3, warmup_steps=50, decay_steps=200, min_lr=1e-5)
    lr = np.array([s.lr_at(i) for i in range(300)])
    assert (np.diff(lr[:50]) > 0).all() and (np.diff(lr[50:250]) < 0).all() and (lr[250:] == lr[250]).all()


def test_seed_system_scheduler_tests():
    s = WarmupCosineSchedule(1e-3, warmup_steps=100, decay_steps=1000)
    assert s.step() < 1e-3  # warm-up starts below the peak
    for _ in range(98):
        s.step()
    assert s.get_lr() == pytest.approx(1e-3, abs=1e-5)
    c = WarmupCosineSchedule(1e-3, warmup_steps=0, decay_steps=100, min_lr=1e-4)
    for _ in range(100):
        c.step()
    assert c.get_lr() == pytest.approx(1e-4, abs=1e-5)


def test_step_sets_optimizer_rate_and_reset():
    s = WarmupCosineSchedule(0.5, warmup_steps=2, decay_steps=10)
    opt = SGD(lr=1.0)
    assert s.step(opt) == pytest.approx(0.25) and opt.lr == pytest.approx(0.25)
    assert s.step(opt) == pytest.approx(0.5) and s.current_step == 2
    s.reset()
    assert s.current_step == 0


def test_warmup_cosine_bad_arguments():
    with pytest.raises(ConfigurationError, match="initial_lr"):
        WarmupCosineSchedule(0.0)
    with pytest.raises(ConfigurationError, match="min_lr"):
        WarmupCosineSchedule(1e-3, min_lr=1e-2)
    with pytest.raises(ConfigurationError, match="decay_steps"):
        WarmupCosineSchedule(1e-3, decay_steps=0)
    with pytest.raises(ConfigurationError, match="warmup_steps"):
        WarmupCosineSchedule(1e-3, warmup_steps=-1)
    with pytest.raises(ConfigurationError, match="step"):
        WarmupCosineSchedule(1e-3).lr_at(-1)


# -- curriculum ---------------------------------------------------------------------------------------------------
def test_curriculum_switches_stage_after_duration():
    c = CurriculumScheduler([CurriculumStage("easy", 0.2, 10), CurriculumStage("hard", 0.8, 10)])
    assert c.current_stage.name == "easy" and c.difficulty == 0.2
    for _ in range(9):
        c.step()
    assert c.current_stage.name == "easy"
    c.step()
    assert c.current_stage.name == "hard" and c.difficulty == 0.8
    assert c.progress() == pytest.approx(0.5)
    assert not c.is_complete()
    for _ in range(10):
        c.step()
    assert c.is_complete() and c.current_stage.name == "hard"
    c.step()  # never past the last stage; progress may exceed 1
    assert c.current_stage.name == "hard" and c.progress() == pytest.approx(21 / 20)
    c.reset()
    assert c.current_stage.name == "easy" and c.total_steps == 0


def test_default_curriculum():
    c = default_curriculum(400)
    assert [s.name for s in c.stages] == ["warm_up", "easy", "medium", "hard"]
    assert [(s.difficulty, s.temperature, s.negative_count, s.duration) for s in c.stages] == [
        (0.1, 2.0, 5, 100), (0.3, 1.0, 10, 100), (0.6, 0.5, 20, 100), (1.0, 0.1, 50, 100)]
    for _ in range(399):
        c.step()
    assert not c.is_complete()
    c.step()
    assert c.is_complete() and c.temperature == 0.1 and c.negative_count == 50


def test_curriculum_without_stages_and_zero_durations():
    c = CurriculumScheduler()
    assert (c.difficulty, c.temperature, c.negative_count) == (1.0, 1.0, 10)
    assert c.is_complete() and c.progress() == 1.0 and c.step() is None
    z = default_curriculum(3)  # four stages of 0 steps: straight to the last
    assert z.current_stage.name == "hard" and z.is_complete() and z.progress() == 1.0
    skip = CurriculumScheduler([CurriculumStage("a", duration=2), CurriculumStage("b", duration=0),
                                CurriculumStage("c", duration=3)])
    skip.step()
    skip.step()
    assert skip.current_stage.name == "c"


def test_curriculum_stage_validation():
    with pytest.raises(ConfigurationError, match="difficulty"):
        CurriculumStage("x", difficulty=1.5)
    with pytest.raises(ConfigurationError, match="temperature"):
        CurriculumStage("x", temperature=-1.0)
    with pytest.raises(ConfigurationError, match="negative_count"):
        CurriculumStage("x", negative_count=0)
    with pytest.raises(ConfigurationError, match="duration"):
        CurriculumStage("x", duration=-1)
    with pytest.raises(ConfigurationError, match="stages"):
        CurriculumScheduler(["easy"])


# -- temperature annealing ----------------------------------------------------------------------------------------
def annealed(kind, t0, t1, S, step, size=None):
    """The four decays, written out independently."""
    if step >= S:
        return t1
    p = step / S
    if kind == "linear":
        return t0 - (t0 - t1) * p
    if kind == "exponential":
        return t0 * (t1 / t0) ** p
    if kind == "cosine":
        return t1 + 0.5 * (t0 - t1) * (1 + math.cos(math.pi * p))
    size = size or max(1, S // 10)
    n = max(1, S // size)
    return t0 + (t1 - t0) * min(1.0, (step // size) / n)


@pytest.mark.parametrize("kind", ["linear", "exponential", "cosine", "step"])
@pytest.mark.parametrize("t0, t1", [(1.0, 0.1), (0.05, 2.0)])
def test_annealing_matches_formula_and_boundaries(kind, t0, t1):
    a = TemperatureAnnealing(t0, t1, 100, decay=kind)
    assert a.value_at(0) == pytest.approx(t0)
    assert a.value_at(100) == t1 and a.value_at(1000) == t1
    for s in range(0, 101, 7):
        assert a.value_at(s) == pytest.approx(annealed(kind, t0, t1, 100, s), rel=1e-12)
    vals = [a.step() for _ in range(102)]
    assert vals[0] == pytest.approx(t0) and vals[-1] == t1
    d = np.diff(vals)
    assert (d <= 1e-15).all() if t1 < t0 else (d >= -1e-15).all()


def test_seed_system_annealing_tests():
    lin = TemperatureAnnealing(1.0, 0.1, 100)
    assert lin.value_at(50) == pytest.approx(0.55)
    assert 0.4 < TemperatureAnnealing(1.0, 0.1, 100, "cosine").value_at(50) < 0.6
    st = TemperatureAnnealing(1.0, 0.1, 100, "step", step_size=25)
    assert st.value_at(24) == 1.0 and st.value_at(25) < 1.0
    assert st.value_at(25) == pytest.approx(1.0 - 0.9 / 4)


def test_step_decay_shorter_than_step_size_drops_at_the_end():
    a = TemperatureAnnealing(1.0, 0.2, 5, "step", step_size=10)  # upstream divides by zero here
    assert [a.value_at(s) for s in range(6)] == [1.0, 1.0, 1.0, 1.0, 1.0, 0.2]


def test_annealing_bad_arguments():
    with pytest.raises(ConfigurationError, match="final"):
        TemperatureAnnealing(1.0, 0.0, 10, "exponential")  # upstream: NaN
    with pytest.raises(ConfigurationError, match="initial"):
        TemperatureAnnealing(-1.0, 0.1, 10)
    with pytest.raises(ConfigurationError, match="final"):
        TemperatureAnnealing(1.0, -0.1, 10)
    with pytest.raises(ConfigurationError, match="steps"):
        TemperatureAnnealing(1.0, 0.1, 0)
    with pytest.raises(ConfigurationError, match="decay"):
        TemperatureAnnealing(1.0, 0.1, 10, "quadratic")
    with pytest.raises(ConfigurationError, match="step_size"):
        TemperatureAnnealing(1.0, 0.1, 10, "step", step_size=0)
    assert TemperatureAnnealing(1.0, 0.0, 10).value_at(10) == 0.0  # linear to 0 is allowed
