"""Helpers shared by the tests: small seeded configurations on the synthetic 2-D mixture, and a wait for a
condition with a deadline (the suite never sleeps a fixed time and hopes)."""

import time
from pathlib import Path
from typing import Callable

from omasgan.config import OMASGANConfig, default_config

TESTS = Path(__file__).resolve().parent
"""The tests' root folder (this module and ``s3_helpers`` live there: a subprocess puts it on its path)."""
REPO = TESTS.parent
"""The repository's root folder."""


def wait_until(condition: Callable[[], object], timeout: float, what: str, interval: float = 0.05) -> object:
    """Poll ``condition`` until it returns a true value, and return that value; fail naming ``what`` once
    ``timeout`` seconds have passed without it. The deadline bounds a slow machine, not a guess of speed."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        assert time.monotonic() < deadline, f"{what} (waited {timeout:g} s)"
        time.sleep(interval)


def tiny_config(holdout: int = 4, n_per_class: int = 300, **overrides) -> OMASGANConfig:
    """The synthetic defaults shrunk to run a full pipeline in a few seconds on one core."""
    config = default_config("synthetic", holdout=holdout, synthetic_n_per_class=n_per_class)
    base = {
        "network.g_width": 64,
        "network.d_width": 64,
        "task1.epochs": 30,
        "task2.epochs": 10,
        "task2.bank_size": 1024,
        "task3.epochs": 10,
        "j.epochs": 80,
        "j.lr": 2e-3,
    }
    base.update({k.replace("__", "."): v for k, v in overrides.items()})
    return config.with_overrides(base)
