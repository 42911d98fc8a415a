"""The project's names, each defined once: data sets, protocols, network kinds, stages, detectors,
search spaces, splits and score choices.

Every module that validates or lists one of these imports it from here (the config, the data
registry, the networks, the search spaces, the study commands, the tables and the report), so a new
name is added in one place.  Plain tuples, no imports: the CLI's parser builds from them without
loading torch, Ray or pyarrow.

One meaning per word:
- a *stage* is a training step of the pipeline (``STAGES``); the fourth is ``j``;
- a *detector* is a scorer a stage leaves behind (``DETECTORS``): Task 1's critic ``task1``, Task 3's
  critic ``task3``, and the final detector ``final`` that stage ``j`` trains (``STAGE_DETECTOR``);
- the *held-out class* (``holdout`` in a config, ``holdout_class`` in a result row) is the class a
  protocol treats specially (anomalous for loo, normal for occ).
"""

DATASET_NAMES = ("synthetic", "digits", "mnist", "fashion_mnist", "kmnist", "cifar10", "svhn", "tabular")
PROTOCOL_NAMES = ("loo", "occ", "ood")
NETWORK_KINDS = ("mlp", "dcgan", "resnet")
STAGES = ("task1", "task2", "task3", "j")
DETECTORS = ("task1", "task3", "final")
STAGE_DETECTOR = {"task1": "task1", "task2": None, "task3": "task3", "j": "final"}
"""The detector each stage leaves behind (Task 2 leaves none: its output is the boundary generator)."""
SPLITS = ("val", "test")
SPACE_NAMES = ("full", "task2", "task3", "j", "variants", "branches")
"""The search spaces of ``omasgan search --space`` (defined in ``omasgan.search_spaces.spaces``)."""
SCORE_CHOICES = ("none", "test", "all")
"""``--scores``: which per-sample scores a study stores (see ``result_store.score_splits``)."""
METRIC_NAMES = ("auroc", "auprc", "f1", "precision", "recall", "accuracy")
"""The metrics of every detector on every split (``omasgan.metrics``)."""
ALARM_STATISTICS = ("ink_auroc", "contrast_auroc", "nn_auroc")
"""The shortcut alarm's trivial statistics (``omasgan.alarm``): each one's AUROC alone separating B(z) from x."""
ALARM_KEYS = (*ALARM_STATISTICS, "ink_spearman")
"""Every figure of the shortcut alarm, as stored (``alarm_<key>`` columns of the result rows)."""
