"""Learning-rate multipliers: linear warmup over ``w`` steps, then decay to
``min_ratio`` at step ``T``::

    f(s) = (s + 1) / w                                     s < w
    cosine: min + (1 - min) * (1 + cos(pi * p)) / 2        p = (s - w) / (T - w)
    linear: min + (1 - min) * (1 - p)
    constant: 1
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from mmrefine.core.errors import ConfigError

SCHEDULES = ("cosine", "linear", "constant")


@dataclass
class WarmupDecay:
    """Picklable ``LambdaLR`` multiplier (see module docstring)."""

    total_steps: int
    warmup_steps: int = 0
    schedule: str = "cosine"
    min_ratio: float = 0.0

    def __post_init__(self) -> None:
        if self.schedule not in SCHEDULES:
            raise ConfigError(f"optim.schedule must be one of {SCHEDULES}, got '{self.schedule}'")

    def __call__(self, step: int) -> float:
        if step < self.warmup_steps:
            return (step + 1) / self.warmup_steps
        if self.schedule == "constant":
            return 1.0
        p = min(1.0, (step - self.warmup_steps) / max(1, self.total_steps - self.warmup_steps))
        decay = 0.5 * (1 + math.cos(math.pi * p)) if self.schedule == "cosine" else 1 - p
        return self.min_ratio + (1 - self.min_ratio) * decay
