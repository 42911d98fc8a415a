"""The four OMASGAN training stages: each a function that takes its inputs and returns a
:class:`StageResult` (trained modules and per-epoch loss history)."""

from .common import StageResult, stage_seed
from .final_j import j_loss, train_j
from .task1 import train_task1
from .task2 import train_task2
from .task3 import task3_critic_loss, train_task3

__all__ = [
    "StageResult",
    "stage_seed",
    "train_task1",
    "train_task2",
    "train_task3",
    "task3_critic_loss",
    "train_j",
    "j_loss",
]
