"""Training utilities: contrastive losses, optimisers, schedules and negative mining (NumPy only).

>>> import numpy as np
>>> from workbench.training import InfoNCELoss, Adam
>>> rng = np.random.default_rng(0)
>>> a, p, n = rng.standard_normal(8), rng.standard_normal(8), rng.standard_normal((4, 8))
>>> loss, grad = InfoNCELoss(temperature=0.1).compute_with_gradients(a, p, n)
>>> Adam(lr=0.01).step(a, grad)   # a is updated in place
"""
from workbench.training.losses import InfoNCELoss, LocalContrastiveLoss, Loss, LossGradients, SpectralRegularization
from workbench.training.mining import HardNegativeMiner, InBatchMiner, NegativeMiner
from workbench.training.optimizers import SGD, Adam, AdamW, Optimizer
from workbench.training.schedules import (
    CurriculumScheduler,
    CurriculumStage,
    LearningRateScheduler,
    TemperatureAnnealing,
    WarmupCosineSchedule,
    default_curriculum,
)

__all__ = [
    "Loss", "LossGradients", "InfoNCELoss", "LocalContrastiveLoss", "SpectralRegularization",
    "Optimizer", "SGD", "Adam", "AdamW",
    "WarmupCosineSchedule", "LearningRateScheduler", "CurriculumStage", "CurriculumScheduler", "default_curriculum",
    "TemperatureAnnealing",
    "NegativeMiner", "HardNegativeMiner", "InBatchMiner",
]
