"""Schedules for training: warm-up + cosine learning rate, curriculum stages, temperature annealing.

Each schedule is a pure function of the step (``lr_at(step)``, ``value_at(step)``) plus a counter
with the seed system's ``step()`` (returns the current value, then advances) and ``reset()``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

from workbench.errors import ConfigurationError
from workbench import checks as C


class WarmupCosineSchedule:
    """Linear warm-up then cosine decay of the learning rate.

    During warm-up (``step < W``): ``lr = lr₀·(step + 1)/W``; after it, with
    ``p = min((step − W)/T, 1)``: ``lr = lr_min + (lr₀ − lr_min)·½(1 + cos πp)``, so ``lr₀`` at
    ``step = W`` and ``lr_min`` from ``step = W + T`` on. Defaults as the seed system's
    ``LearningRateScheduler``: ``W = 0``, ``T = 100000``, ``lr_min = 1e-7`` (``0 < lr_min ≤ lr₀``:
    optimisers refuse a rate of 0).
    Paper: Loshchilov & Hutter, *SGDR*, 2017; Goyal et al., 2017 (warm-up).
    """

    def __init__(self, initial_lr: float, warmup_steps: int = 0, decay_steps: int = 100_000,
                 min_lr: float = 1e-7) -> None:
        self.initial_lr = C.positive("initial_lr", initial_lr)
        self.warmup_steps = C.integer("warmup_steps", warmup_steps, minimum=0)
        self.decay_steps = C.integer("decay_steps", decay_steps, minimum=1)
        self.min_lr = C.real("min_lr", min_lr, low=0.0, high=self.initial_lr, low_open=True)
        self.current_step = 0

    def lr_at(self, step: int) -> float:
        """The learning rate at ``step`` (0-based)."""
        step = C.integer("step", step, minimum=0)
        if step < self.warmup_steps:
            return self.initial_lr * (step + 1) / self.warmup_steps
        p = min((step - self.warmup_steps) / self.decay_steps, 1.0)
        return self.min_lr + (self.initial_lr - self.min_lr) * 0.5 * (1.0 + math.cos(math.pi * p))

    def get_lr(self) -> float:
        """The learning rate at the current step."""
        return self.lr_at(self.current_step)

    def step(self, optimizer=None) -> float:
        """Return the current rate (and set it on ``optimizer`` if given), then advance one step."""
        lr = self.get_lr()
        if optimizer is not None:
            optimizer.set_learning_rate(lr)
        self.current_step += 1
        return lr

    def reset(self) -> None:
        self.current_step = 0


#: The seed system's name (``LearningRateScheduler(initial)``), for porting.
LearningRateScheduler = WarmupCosineSchedule


@dataclass(frozen=True)
class CurriculumStage:
    """One stage of a curriculum: how hard, how long, at which temperature, with how many negatives.

    Defaults as the seed system: ``difficulty 0.5``, ``duration 1000`` steps, ``temperature 1.0``,
    ``negative_count 10``. Out-of-range values are errors (the seed system clips them silently).
    """

    name: str
    difficulty: float = 0.5
    duration: int = 1000
    temperature: float = 1.0
    negative_count: int = 10

    def __post_init__(self) -> None:
        if not isinstance(self.name, str):
            raise ConfigurationError(f"name: expected a string, got {self.name!r}")
        C.real("difficulty", self.difficulty, low=0.0, high=1.0)
        C.integer("duration", self.duration, minimum=0)
        C.positive("temperature", self.temperature)
        C.integer("negative_count", self.negative_count, minimum=1)


@dataclass
class CurriculumScheduler:
    """Walks through curriculum stages: ``step()`` moves to the next stage once the current one has
    run ``duration`` steps (never past the last; stages of duration 0 before the last are skipped).

    ``difficulty``, ``temperature``, ``negative_count`` are the current stage's (1.0, 1.0, 10 with
    no stages); ``is_complete()`` = no stages, or the last stage has run its duration;
    ``progress() = total_steps/Σ durations`` (1 if the sum is 0; exceeds 1 past the end).
    """

    stages: list = field(default_factory=list)
    current_index: int = 0
    steps_in_stage: int = 0
    total_steps: int = 0

    def __post_init__(self) -> None:
        self.stages = list(self.stages)
        for i, s in enumerate(self.stages):
            if not isinstance(s, CurriculumStage):
                raise ConfigurationError(f"stages[{i}]: expected a CurriculumStage, got {type(s).__name__}")
        self._skip_empty()

    def add_stage(self, stage: CurriculumStage) -> "CurriculumScheduler":
        if not isinstance(stage, CurriculumStage):
            raise ConfigurationError(f"stage: expected a CurriculumStage, got {type(stage).__name__}")
        self.stages.append(stage)
        self._skip_empty()
        return self

    def _skip_empty(self) -> None:
        while (self.current_index < len(self.stages) - 1
               and self.steps_in_stage >= self.stages[self.current_index].duration):
            self.current_index += 1
            self.steps_in_stage = 0

    @property
    def current_stage(self) -> CurriculumStage | None:
        return self.stages[self.current_index] if self.stages else None

    @property
    def difficulty(self) -> float:
        return self.current_stage.difficulty if self.stages else 1.0

    @property
    def temperature(self) -> float:
        return self.current_stage.temperature if self.stages else 1.0

    @property
    def negative_count(self) -> int:
        return self.current_stage.negative_count if self.stages else 10

    def step(self) -> CurriculumStage | None:
        """Advance one step; return the stage in force after it."""
        self.total_steps += 1
        if self.stages:
            self.steps_in_stage += 1
            self._skip_empty()
        return self.current_stage

    def is_complete(self) -> bool:
        if not self.stages:
            return True
        return (self.current_index == len(self.stages) - 1
                and self.steps_in_stage >= self.stages[-1].duration)

    def progress(self) -> float:
        total = sum(s.duration for s in self.stages)
        return 1.0 if total == 0 else self.total_steps / total

    def reset(self) -> None:
        self.current_index = 0
        self.steps_in_stage = 0
        self.total_steps = 0
        self._skip_empty()


def default_curriculum(total_steps: int) -> CurriculumScheduler:
    """Four stages of ``⌊T/4⌋`` steps: warm_up (difficulty 0.1, temperature 2.0, 5 negatives),
    easy (0.3, 1.0, 10), medium (0.6, 0.5, 20), hard (1.0, 0.1, 50) — the seed system's."""
    q = C.integer("total_steps", total_steps, minimum=0) // 4
    return CurriculumScheduler([
        CurriculumStage("warm_up", 0.1, q, 2.0, 5),
        CurriculumStage("easy", 0.3, q, 1.0, 10),
        CurriculumStage("medium", 0.6, q, 0.5, 20),
        CurriculumStage("hard", 1.0, q, 0.1, 50),
    ])


DECAYS = ("linear", "exponential", "cosine", "step")


class TemperatureAnnealing:
    """Anneal a temperature from ``T₀`` to ``T₁`` over ``S`` steps; ``T₁`` at and after step ``S``.

    With ``p = step/S``: linear ``T₀ + (T₁ − T₀)p``; exponential ``T₀·(T₁/T₀)^p`` (needs
    ``T₁ > 0``); cosine ``T₁ + ½(T₀ − T₁)(1 + cos πp)``; step: ``n = max(1, ⌊S/size⌋)`` equal
    drops, ``T₀ + (T₁ − T₀)·min(1, ⌊step/size⌋/n)`` (``size`` defaults to ``max(1, ⌊S/10⌋)``).
    Increasing schedules (``T₁ > T₀``) work the same way. Temperatures must be ``> 0`` (``T₁ = 0``
    is allowed except for the exponential decay).
    Do better than upstream (docs/upstream.md#training): exponential with ``T₁ = 0`` is refused instead of giving NaN,
    and the step decay with ``S < size`` drops once at ``S`` instead of dividing by zero.
    """

    def __init__(self, initial: float, final: float, steps: int, decay: str = "linear",
                 step_size: int | None = None) -> None:
        self.initial = C.positive("initial", initial)
        self.decay = C.choice("decay", decay, DECAYS)
        self.final = (C.positive if self.decay == "exponential" else C.non_negative)("final", final)
        self.steps = C.integer("steps", steps, minimum=1)
        self.step_size = (max(1, self.steps // 10) if step_size is None
                          else C.integer("step_size", step_size, minimum=1))
        self.current_step = 0

    def value_at(self, step: int) -> float:
        """The temperature at ``step`` (0-based)."""
        step = C.integer("step", step, minimum=0)
        t0, t1, s = self.initial, self.final, self.steps
        if step >= s:
            return t1
        p = step / s
        if self.decay == "linear":
            return t0 + (t1 - t0) * p
        if self.decay == "exponential":
            return t0 * math.exp(math.log(t1 / t0) * p)
        if self.decay == "cosine":
            return t1 + 0.5 * (t0 - t1) * (1.0 + math.cos(math.pi * p))
        drops = max(1, s // self.step_size)
        return t0 + (t1 - t0) * min(1.0, (step // self.step_size) / drops)

    def get_temperature(self) -> float:
        return self.value_at(self.current_step)

    def step(self) -> float:
        """Return the current temperature, then advance one step."""
        t = self.get_temperature()
        self.current_step += 1
        return t

    def reset(self) -> None:
        self.current_step = 0


__all__ = ["WarmupCosineSchedule", "LearningRateScheduler", "CurriculumStage", "CurriculumScheduler",
           "default_curriculum", "TemperatureAnnealing", "DECAYS"]
