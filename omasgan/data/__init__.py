"""Data sets, evaluation protocols and splits for OMASGAN (docs/design.md section 4).

``load_splits`` returns a :class:`DataSplits` of whole float32 tensors: normal-only training data,
a labelled validation split (normals + a few training-split anomalies) and the official test split.
"""

from .registry import DATASETS, dataset_classes, load_splits, validate_data_request
from .splits import PROTOCOLS, DataSplits

__all__ = ["DATASETS", "PROTOCOLS", "DataSplits", "load_splits", "dataset_classes", "validate_data_request"]
