"""Test-wide settings: one torch thread (deterministic, and the suite runs on 2 cores), and the one rule
for what `make test-fast` skips.

A test is ``slow`` when it uses a fixture that starts Ray or a server (the names below), or when it is
marked ``@pytest.mark.slow`` itself (a subprocess, a study, or more than a few seconds of training).
"""

import pytest
import torch

torch.set_num_threads(1)

SLOW_FIXTURES = frozenset({
    "local_ray", "one_cpu_ray", "logical_gpus", "s3_ray",  # a local Ray, one per module
    "s3",  # moto's S3 server on the loopback
    "cluster",  # three Ray nodes (tests/cluster/test_multinode.py)
    "recording", "reports",  # the IAM stand-in's recorded study (tests/cluster/test_iam_stand_in.py)
})


def pytest_collection_modifyitems(config, items):
    for item in items:
        if SLOW_FIXTURES.intersection(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)
