"""Small, fast, seeded configurations on the synthetic 2-D mixture, shared by the tests."""

from omasgan.config import OMASGANConfig, default_config


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
