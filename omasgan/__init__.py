"""OMASGAN: OoD Minimum Anomaly Score GAN (Dionelis et al.), a faithful PyTorch implementation.

The core package is pure PyTorch (no Ray, Optuna or pyarrow import anywhere below it):

- :mod:`omasgan.config`       typed, validated run configuration and the paper's defaults
- :mod:`omasgan.divergences`  the ten distribution metrics (8 f-divergences, KL-WGAN, WGAN-GP)
- :mod:`omasgan.networks`     mlp, dcgan and resnet generators / critics
- :mod:`omasgan.stages`       Task 1, Task 2 (boundary model), Task 3 and the final J
- :mod:`omasgan.stage_runner` the four stages in order, with hooks (cache, checkpoint, report)
- :mod:`omasgan.evaluation`   a detector scored on validation (threshold) and test (once)
- :mod:`omasgan.pipeline`     one run of the four stages, evaluated, as metrics.json
- :mod:`omasgan.baselines`    kNN, Isolation Forest and autoencoder detectors, scored alike
- :mod:`omasgan.detector`     ``OMASGANDetector``: fit / decision_function / predict / save / load
- :mod:`omasgan.data`         data sets, protocols (loo, occ, ood) and splits
"""

__version__ = "0.1.0"
