"""Test-wide settings: one torch thread (deterministic, and the suite runs on 2 cores)."""

import torch

torch.set_num_threads(1)
