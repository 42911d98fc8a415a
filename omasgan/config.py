"""Typed, validated configuration for one OMASGAN run.

Every section is a dataclass that validates itself at construction (``__post_init__``), so an
invalid value is rejected with one line naming it and what is allowed, before any data is read or
any network is built.  A whole config is loaded from a nested dict, a JSON or a YAML file, and
overridden with dotted keys (``task2.mu=0.2``), whose values are parsed as YAML scalars.

``default_config(dataset)`` gives the paper's defaults for a data set (docs/design.md 3.3-3.5):
synthetic Q = 4096, N = 100, mu = 8, nu = 20; image sets Q = 1024, N = 256, mu = 0.2, nu = 0.3;
alpha = 0.3, beta = 1, gamma = 0.7, delta = 0.4 (alpha + delta = 0.7); zeta = 0.5.
"""

from __future__ import annotations

import dataclasses
import json
import math
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import ConfigError
from .vocabulary import DATASET_NAMES, NETWORK_KINDS, PROTOCOL_NAMES, STAGES  # noqa: F401 (re-exported)

DIVERGENCES = (
    "kl",
    "reverse_kl",
    "pearson",
    "neyman",
    "squared_hellinger",
    "jensen_shannon",
    "gan",
    "total_variation",
    "klwgan",
    "wasserstein",
)
GENERATOR_LOSSES = ("non_saturating", "saturating")
TASK2_REFERENCES = ("generator", "data")
J_INITS = ("scratch", "task3", "task1")
FEATURE_SPACES = ("pixel", "critic", "autoencoder")
J_SCORES = ("j", "critic", "fusion")
FUSION_SCALINGS = ("standard", "robust")
NETWORK_INITS = ("default", "n02")
MAX_IMAGE_SIZE = 256
"""The largest ``data.image_size`` (54k MNIST images at 256 x 256 are 14 GB of float32)."""


def _choice(section: str, name: str, value: Any, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ConfigError(f"{section}.{name}={value!r} is not allowed; choose one of: {', '.join(allowed)}")


def _at_least(section: str, name: str, value: float, low: float, *, strict: bool = False) -> None:
    bad = not math.isfinite(value) or (value <= low if strict else value < low)
    if bad:
        relation = ">" if strict else ">="
        raise ConfigError(f"{section}.{name}={value!r} is out of range; it must be a finite number {relation} {low}")


def _in_unit_interval(section: str, name: str, value: float) -> None:
    if not (math.isfinite(value) and 0.0 <= value <= 1.0):
        raise ConfigError(f"{section}.{name}={value!r} is out of range; it must lie in [0, 1]")


def _check_optimizer(section: str, lr: float, beta1: float, beta2: float) -> None:
    _at_least(section, "lr", lr, 0.0, strict=True)
    for name, beta in (("beta1", beta1), ("beta2", beta2)):
        if not (0.0 <= beta < 1.0):
            raise ConfigError(f"{section}.{name}={beta!r} is out of range; it must lie in [0, 1)")


@dataclass
class DataConfig:
    """Which data, which protocol (docs/design.md section 4) and how the splits are cut.

    ``image_size`` = S enlarges every image (training, validation and test splits, and what
    ``omasgan score`` reads) to S x S pixels, bilinearly, after scaling to [-1, 1]
    (:func:`omasgan.transform.resize_images`); null keeps the native size.  MNIST at 32 is what the
    paper's public code trains on, and what ``network.kind = resnet`` takes.  It must be at least
    the data set's own size (checked against its files by
    :func:`omasgan.data.registry.validate_data_request`).
    """

    dataset: str = "digits"
    protocol: str = "loo"
    holdout: int | None = 0
    data_root: str | None = None
    split_seed: int = 0
    val_fraction: float = 0.1
    val_anomaly_fraction: float = 0.05
    ood_dataset: str | None = None
    download: bool = False
    max_train: int | None = None
    tabular_path: str | None = None
    label_column: str | int = "label"
    synthetic_n_per_class: int = 1000
    image_size: int | None = None

    def __post_init__(self) -> None:
        _choice("data", "dataset", self.dataset, DATASET_NAMES)
        _choice("data", "protocol", self.protocol, PROTOCOL_NAMES)
        if self.protocol == "ood":
            if self.ood_dataset is None:
                raise ConfigError("data.protocol='ood' needs data.ood_dataset (the anomaly data set)")
            _choice("data", "ood_dataset", self.ood_dataset, DATASET_NAMES)
        elif self.holdout is None:
            raise ConfigError(f"data.holdout is required for protocol {self.protocol!r}; give a class label")
        if not (0.0 < self.val_fraction < 1.0):
            raise ConfigError(f"data.val_fraction={self.val_fraction!r} is out of range; it must lie in (0, 1)")
        if self.split_seed < 0:
            raise ConfigError(f"data.split_seed={self.split_seed!r} is out of range; it must be >= 0")
        if not (0.0 < self.val_anomaly_fraction <= 1.0):
            raise ConfigError(
                f"data.val_anomaly_fraction={self.val_anomaly_fraction!r} is out of range; it must lie in (0, 1] "
                "(the validation split needs anomalies: its AUROC chooses configs and thresholds)"
            )
        if self.max_train is not None and self.max_train < 1:
            raise ConfigError(f"data.max_train={self.max_train!r} is out of range; it must be >= 1 or null")
        if self.synthetic_n_per_class < 2:
            raise ConfigError(f"data.synthetic_n_per_class={self.synthetic_n_per_class!r} must be >= 2")
        if self.image_size is not None:
            if not 1 <= self.image_size <= MAX_IMAGE_SIZE:
                raise ConfigError(f"data.image_size={self.image_size!r} is out of range; it must be an integer in "
                                  f"1..{MAX_IMAGE_SIZE} or null (the native size)")
            vectors = [d for d in (self.dataset, self.ood_dataset if self.protocol == "ood" else None)
                       if d in ("synthetic", "tabular")]
            if vectors:
                raise ConfigError(f"data.image_size={self.image_size} applies to image data sets only; "
                                  f"{vectors[0]!r} is not one: leave data.image_size null")


@dataclass
class NetworkConfig:
    """Architectures of G/B (generator family) and D/C/J (discriminator family), docs/design.md 3.7.

    Two switches bring ``kind = resnet`` to the BigGAN network of the paper's public code (both off
    by default, which keeps the SN-GAN ResNet as it was; ``resnet`` only):
    ``g_spectral_norm`` spectrally normalises every layer of G, B and G' (BigGAN's ``G_param = SN``);
    ``init = n02`` draws every convolution and linear weight of G and D from N(0, 0.02) and leaves
    the biases at PyTorch's default (BigGAN's ``--G_init N02 --D_init N02``); ``default`` is each
    family's own initialisation.
    """

    kind: str = "mlp"
    latent_dim: int = 16
    g_width: int = 256
    d_width: int = 256
    depth: int = 3
    g_batchnorm: bool = True
    d_batchnorm: bool = False
    spectral_norm: bool = False
    g_spectral_norm: bool = False
    init: str = "default"

    def __post_init__(self) -> None:
        _choice("network", "kind", self.kind, NETWORK_KINDS)
        for name in ("latent_dim", "g_width", "d_width", "depth"):
            _at_least("network", name, getattr(self, name), 1)
        _choice("network", "init", self.init, NETWORK_INITS)
        if self.kind != "resnet":
            for name, value, off in (("g_spectral_norm", self.g_spectral_norm, False), ("init", self.init, "default")):
                if value != off:
                    shown = str(value).lower() if isinstance(value, bool) else repr(value)
                    raise ConfigError(f"network.{name}={shown} applies to network.kind=resnet only; "
                                      f"network.kind is {self.kind!r}")


@dataclass
class DivergenceConfig:
    """The distribution metric shared by Tasks 1-3 and J (docs/design.md 3.1).

    ``klwgan_tau`` is the KL-WGAN temperature, ``gp_weight`` the WGAN-GP lambda, ``r1_gamma`` the
    weight of the optional R1 penalty (gamma/2 * E||grad_x v(x)||^2 on P-side samples).
    """

    name: str = "gan"
    klwgan_tau: float = 5.0
    gp_weight: float = 10.0
    r1_gamma: float = 0.0
    generator_loss: str = "non_saturating"

    def __post_init__(self) -> None:
        _choice("divergence", "name", self.name, DIVERGENCES)
        _choice("divergence", "generator_loss", self.generator_loss, GENERATOR_LOSSES)
        _at_least("divergence", "klwgan_tau", self.klwgan_tau, 0.0, strict=True)
        _at_least("divergence", "gp_weight", self.gp_weight, 0.0)
        _at_least("divergence", "r1_gamma", self.r1_gamma, 0.0)


@dataclass
class Task1Config:
    """Task 1: the base f-GAN (G, D) on the normal data."""

    epochs: int = 60
    batch_size: int = 128
    lr_g: float = 2e-4
    lr_d: float = 2e-4
    beta1: float = 0.5
    beta2: float = 0.999
    d_steps: int = 1

    def __post_init__(self) -> None:
        _at_least("task1", "epochs", self.epochs, 1)
        _at_least("task1", "batch_size", self.batch_size, 2)
        _at_least("task1", "d_steps", self.d_steps, 1)
        _check_optimizer("task1", self.lr_g, self.beta1, self.beta2)
        _check_optimizer("task1", self.lr_d, self.beta1, self.beta2)


@dataclass
class Task2Config:
    """Task 2: the boundary model B, L_B = -m(B, G) + mu d(B, G) + nu s(B, z).

    ``batch_size`` is N of eq. (4), ``bank_size`` is Q of eq. (3), ``p`` the norm of d.
    One epoch is ceil(n_train / N) steps, so epochs are comparable across stages.

    Variants (issue 12; the defaults are the paper's):
    - ``boundaries`` K >= 1 boundary models B_1..B_K, each with the paper's loss and its own critic,
      plus ``diversity`` * the mean pairwise cosine similarity of their mean offsets
      E_z[B_k(z) - G(z)] (:func:`omasgan.boundary.offset_similarity`); Task 3 and J use their union.
    - ``feature_space``: where d and s measure distances: ``pixel`` (the paper), ``critic`` (the
      penultimate layer of Task 1's D, frozen) or ``autoencoder`` (the code of an autoencoder trained
      on the normal training data for ``ae_epochs`` epochs at ``ae_lr``, ``ae_width`` channels or
      units, ``ae_latent_dim`` = 0 picks the code size: :func:`omasgan.autoencoders.default_latent_dim`).
    """

    epochs: int = 20
    batch_size: int = 256
    bank_size: int = 1024
    mu: float = 0.2
    nu: float = 0.3
    p: float = 2.0
    bank_refresh: int = 1
    eps: float = 1e-6
    lr_b: float = 2e-4
    lr_d: float = 2e-4
    beta1: float = 0.5
    beta2: float = 0.999
    d_steps: int = 1
    reference: str = "generator"
    boundaries: int = 1
    diversity: float = 1.0
    feature_space: str = "pixel"
    ae_epochs: int = 20
    ae_latent_dim: int = 0
    ae_width: int = 32
    ae_lr: float = 1e-3

    def __post_init__(self) -> None:
        _at_least("task2", "epochs", self.epochs, 1)
        _at_least("task2", "batch_size", self.batch_size, 2)
        _at_least("task2", "bank_size", self.bank_size, 1)
        _at_least("task2", "mu", self.mu, 0.0)
        _at_least("task2", "nu", self.nu, 0.0)
        _at_least("task2", "p", self.p, 1.0)
        _at_least("task2", "bank_refresh", self.bank_refresh, 1)
        _at_least("task2", "eps", self.eps, 0.0, strict=True)
        _at_least("task2", "d_steps", self.d_steps, 0)
        _check_optimizer("task2", self.lr_b, self.beta1, self.beta2)
        _check_optimizer("task2", self.lr_d, self.beta1, self.beta2)
        _choice("task2", "reference", self.reference, TASK2_REFERENCES)
        _at_least("task2", "boundaries", self.boundaries, 1)
        _at_least("task2", "diversity", self.diversity, 0.0)
        _choice("task2", "feature_space", self.feature_space, FEATURE_SPACES)
        _at_least("task2", "ae_epochs", self.ae_epochs, 1)
        _at_least("task2", "ae_latent_dim", self.ae_latent_dim, 0)
        _at_least("task2", "ae_width", self.ae_width, 1)
        _at_least("task2", "ae_lr", self.ae_lr, 0.0, strict=True)


@dataclass
class Task3Config:
    """Task 3 (eq. 5): G' and C retrained with the boundary samples.

    Admissible region (paper section 3.4): alpha + delta in [0, 1] and gamma >= alpha + delta - 1
    (so gamma may be negative when alpha + delta < 1); alpha, beta, delta >= 0.
    """

    epochs: int = 20
    batch_size: int = 128
    alpha: float = 0.3
    beta: float = 1.0
    gamma: float = 0.7
    delta: float = 0.4
    lr_g: float = 2e-4
    lr_d: float = 2e-4
    beta1: float = 0.5
    beta2: float = 0.999
    d_steps: int = 1

    def __post_init__(self) -> None:
        _at_least("task3", "epochs", self.epochs, 1)
        _at_least("task3", "batch_size", self.batch_size, 2)
        _at_least("task3", "d_steps", self.d_steps, 1)
        for name in ("alpha", "beta", "delta"):
            _at_least("task3", name, getattr(self, name), 0.0)
        if not math.isfinite(self.gamma):
            raise ConfigError(f"task3.gamma={self.gamma!r} must be a finite number")
        total = self.alpha + self.delta
        if not (0.0 <= total <= 1.0 + 1e-9):
            raise ConfigError(
                f"task3.alpha + task3.delta = {total:g} (alpha={self.alpha:g}, delta={self.delta:g}) "
                "is outside the admissible region; it must lie in [0, 1]"
            )
        if self.gamma < total - 1.0 - 1e-9:
            raise ConfigError(
                f"task3.gamma={self.gamma:g} is below alpha + delta - 1 = {total - 1.0:g}; "
                "the admissible region needs gamma >= alpha + delta - 1"
            )
        _check_optimizer("task3", self.lr_g, self.beta1, self.beta2)
        _check_optimizer("task3", self.lr_d, self.beta1, self.beta2)


@dataclass
class JConfig:
    """The final discriminator J (eq. 6); ``init`` picks its starting weights.

    Variants (issue 12; the defaults are the paper's):
    - ``refine_steps`` > 0: adversarial boundary refinement (GAAL-style, :mod:`omasgan.stages.refine`):
      after every J step, ``refine_steps`` steps of a copy B_r of B on
      E_z[j(B_r(z))] + ``refine_weight`` * E_z[max(0, eps - dist(B_r(z), nearest training normal))],
      eps = ``refine_margin`` * the median nearest-neighbour distance among training normals; the
      nearest normal is sought in ``refine_bank`` normals drawn afresh each step; B_r learns at
      ``refine_lr``.  ``refine_patience`` > 0 stops refining once J's loss on the held-out
      ``refine_holdout`` fraction of the TRAINING normals has not reached a new minimum for that many
      epochs (J then trains on the rest of the training normals only).
    - ``score``: the final anomaly score: ``j`` (J's logit, the paper), ``critic`` (Task 3's critic
      score) or ``fusion`` (the mean of both, each standardised on the VALIDATION NORMALS with
      ``fusion_scaling`` = ``standard`` (mean, SD) or ``robust`` (median, IQR)).
    """

    epochs: int = 20
    batch_size: int = 128
    zeta: float = 0.5
    lr: float = 2e-4
    beta1: float = 0.5
    beta2: float = 0.999
    init: str = "scratch"
    refine_steps: int = 0
    refine_weight: float = 1.0
    refine_margin: float = 1.0
    refine_lr: float = 2e-4
    refine_bank: int = 1024
    refine_patience: int = 0
    refine_holdout: float = 0.1
    score: str = "j"
    fusion_scaling: str = "standard"

    def __post_init__(self) -> None:
        _at_least("j", "epochs", self.epochs, 1)
        _at_least("j", "batch_size", self.batch_size, 2)
        _in_unit_interval("j", "zeta", self.zeta)
        _check_optimizer("j", self.lr, self.beta1, self.beta2)
        _choice("j", "init", self.init, J_INITS)
        _at_least("j", "refine_steps", self.refine_steps, 0)
        _at_least("j", "refine_weight", self.refine_weight, 0.0)
        _at_least("j", "refine_margin", self.refine_margin, 0.0)
        _at_least("j", "refine_lr", self.refine_lr, 0.0, strict=True)
        _at_least("j", "refine_bank", self.refine_bank, 1)
        _at_least("j", "refine_patience", self.refine_patience, 0)
        if not (math.isfinite(self.refine_holdout) and 0.0 < self.refine_holdout < 1.0):
            raise ConfigError(f"j.refine_holdout={self.refine_holdout!r} is out of range; it must lie in (0, 1)")
        _choice("j", "score", self.score, J_SCORES)
        _choice("j", "fusion_scaling", self.fusion_scaling, FUSION_SCALINGS)


@dataclass
class OMASGANConfig:
    """Everything one OMASGAN run depends on."""

    data: DataConfig = field(default_factory=DataConfig)
    network: NetworkConfig = field(default_factory=NetworkConfig)
    divergence: DivergenceConfig = field(default_factory=DivergenceConfig)
    task1: Task1Config = field(default_factory=Task1Config)
    task2: Task2Config = field(default_factory=Task2Config)
    task3: Task3Config = field(default_factory=Task3Config)
    j: JConfig = field(default_factory=JConfig)
    seed: int = 0
    threads: int = 1
    """torch CPU threads of every stage and of scoring.  Part of a run's identity: on the CPU the
    thread count changes the order of floating-point reductions, and GAN training amplifies that
    (the same seed at 1 and at 2 threads can end far apart), so it is in the stage-cache key and in
    every result row."""

    def __post_init__(self) -> None:
        for name, kind in _section_types().items():
            if not isinstance(getattr(self, name), kind):
                raise ConfigError(f"config section {name!r} must be a {kind.__name__}")
        if self.seed < 0:
            raise ConfigError(f"seed={self.seed!r} is out of range; it must be >= 0")
        if isinstance(self.threads, bool) or not isinstance(self.threads, int) or self.threads < 1:
            raise ConfigError(f"threads={self.threads!r} is out of range; it must be an integer >= 1")

    # ---- conversion -------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """A nested plain dict (JSON/YAML serialisable) that ``from_dict`` reads back."""
        return dataclasses.asdict(self)

    def flat(self) -> dict[str, Any]:
        """``{"task2.mu": 0.2, ...}``: every leaf under its dotted key."""
        out: dict[str, Any] = {}
        for key, value in self.to_dict().items():
            if isinstance(value, dict):
                out.update({f"{key}.{k}": v for k, v in value.items()})
            else:
                out[key] = value
        return out

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> "OMASGANConfig":
        return _build(cls, raw, "")

    @classmethod
    def load(cls, path: str | Path) -> "OMASGANConfig":
        """Read a JSON or YAML file holding a full or partial nested config (missing keys take defaults)."""
        return cls.from_dict(read_config_file(path))

    def with_overrides(self, overrides: list[str] | dict[str, Any]) -> "OMASGANConfig":
        """A new config with dotted-key overrides applied: ``["task2.mu=0.2", "j.zeta=0.3"]``."""
        raw = self.to_dict()
        items = overrides.items() if isinstance(overrides, dict) else (parse_override(o) for o in overrides)
        for key, value in items:
            _set_dotted(raw, key, value)
        return OMASGANConfig.from_dict(raw)

    def merged(self, partial: dict[str, Any]) -> "OMASGANConfig":
        """A new config with a (possibly partial) nested dict laid over this one."""
        raw = self.to_dict()
        for key, value in _flatten(partial).items():
            _set_dotted(raw, key, value)
        return OMASGANConfig.from_dict(raw)


def _section_types() -> dict[str, type]:
    return {
        "data": DataConfig,
        "network": NetworkConfig,
        "divergence": DivergenceConfig,
        "task1": Task1Config,
        "task2": Task2Config,
        "task3": Task3Config,
        "j": JConfig,
    }


def _flatten(raw: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in raw.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(_flatten(value, dotted + "."))
        else:
            out[dotted] = value
    return out


def parse_override(text: str) -> tuple[str, Any]:
    """Split ``"task2.mu=0.2"`` into ``("task2.mu", 0.2)``; the value is parsed as a YAML scalar."""
    import yaml

    if "=" not in text:
        raise ConfigError(f"override {text!r} is not of the form section.key=value (e.g. task2.mu=0.2)")
    key, _, value = text.partition("=")
    key = key.strip()
    try:
        parsed = yaml.safe_load(value) if value.strip() else ""
    except yaml.YAMLError:
        parsed = value
    return key, parsed


def _set_dotted(raw: dict[str, Any], key: str, value: Any) -> None:
    parts = key.split(".")
    if len(parts) == 1:
        if key not in raw or isinstance(raw[key], dict):
            allowed = ", ".join(k for k, v in raw.items() if not isinstance(v, dict))
            sections = ", ".join(k for k, v in raw.items() if isinstance(v, dict))
            raise ConfigError(f"unknown config key {key!r}; top-level keys: {allowed}; sections: {sections}")
        raw[key] = value
        return
    if len(parts) != 2 or parts[0] not in raw or not isinstance(raw[parts[0]], dict):
        sections = ", ".join(k for k, v in raw.items() if isinstance(v, dict))
        raise ConfigError(f"unknown config key {key!r}; use section.key with a section among: {sections}")
    section, name = parts
    if name not in raw[section]:
        raise ConfigError(
            f"unknown config key {key!r}; section {section!r} has: {', '.join(sorted(raw[section]))}"
        )
    raw[section][name] = value


def coerce_value(value: Any, annotation: Any, where: str) -> Any:
    """Check ``value`` against a field annotation; ints are accepted for floats."""
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(annotation)
        if value is None and type(None) in options:
            return None
        for option in options:
            if option is type(None):
                continue
            try:
                return coerce_value(value, option, where)
            except ConfigError:
                continue
        names = " or ".join("null" if o is type(None) else o.__name__ for o in options)
        raise ConfigError(f"{where}={value!r} has the wrong type; expected {names}")
    if annotation is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{where}={value!r} has the wrong type; expected true or false")
    if annotation is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        raise ConfigError(f"{where}={value!r} has the wrong type; expected an integer")
    if annotation is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value)
            except ValueError:
                pass
        raise ConfigError(f"{where}={value!r} has the wrong type; expected a number")
    if annotation is str:
        if isinstance(value, str):
            return value
        raise ConfigError(f"{where}={value!r} has the wrong type; expected a string")
    return value


def _build(cls: type, raw: Any, prefix: str) -> Any:
    if not isinstance(raw, dict):
        raise ConfigError(f"config section {prefix.rstrip('.') or '<root>'} must be a mapping, got {raw!r}")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(raw) - names)
    if unknown:
        where = prefix.rstrip(".") or "the config"
        raise ConfigError(f"unknown key {prefix}{unknown[0]!r} in {where}; allowed: {', '.join(sorted(names))}")
    kwargs: dict[str, Any] = {}
    for name, value in raw.items():
        annotation = hints[name]
        if dataclasses.is_dataclass(annotation):
            kwargs[name] = _build(annotation, value, f"{prefix}{name}.")
        else:
            kwargs[name] = coerce_value(value, annotation, f"{prefix}{name}")
    return cls(**kwargs)


def _config_text(path: Path) -> str:
    """The text of config file ``path``, decoded as UTF-8 (a leading byte-order mark is allowed).

    A file that cannot be read, is not UTF-8 (Latin-1 text, a binary file) or holds a NUL byte is
    refused with one ConfigError line naming the file, the problem and what a config file must be.
    """
    must_be = "a config file must be UTF-8 JSON or YAML"
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"config file {str(path)!r} cannot be read: {exc.strerror or exc}") from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        offset = len(data) - len(exc.object) + exc.start  # exc.start counts from after a byte-order mark
        raise ConfigError(f"config file {str(path)!r} is not UTF-8 text: byte 0x{data[offset]:02x} at offset "
                          f"{offset} is not valid UTF-8 ({exc.reason}); {must_be}") from None
    if "\x00" in text:
        raise ConfigError(f"config file {str(path)!r} holds a NUL byte at offset {data.index(0)} (a binary file?); "
                          f"{must_be}")
    return text


def read_config_file(path: str | Path) -> dict[str, Any]:
    """Read a nested config mapping from a UTF-8 ``.json``, ``.yaml`` or ``.yml`` file."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file {str(path)!r} does not exist")
    text = _config_text(path)
    try:
        if path.suffix.lower() == ".json":
            raw = json.loads(text)
        elif path.suffix.lower() in (".yaml", ".yml"):
            import yaml

            try:
                raw = yaml.safe_load(text) or {}
            except yaml.YAMLError as exc:  # one line: where the parser stopped and why
                mark = getattr(exc, "problem_mark", None)
                where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
                problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
                raise ConfigError(f"config file {str(path)!r} is not valid YAML{where}: {problem}") from None
        else:
            raise ConfigError(f"config file {str(path)!r} must end in .json, .yaml or .yml")
    except (json.JSONDecodeError, ValueError) as exc:
        if isinstance(exc, ConfigError):
            raise
        raise ConfigError(f"config file {str(path)!r} is not valid: {exc}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"config file {str(path)!r} must hold a mapping of sections")
    # A file written by `omasgan run` / `omasgan report` may wrap the config under "config".
    if "config" in raw and isinstance(raw["config"], dict) and set(raw) - set(_section_types()) - {"seed"}:
        raw = raw["config"]
    return raw


# ---- per-data-set defaults ------------------------------------------------------------------------

_IMAGE_SETS_28 = ("mnist", "fashion_mnist", "kmnist")


def default_config(dataset: str = "digits", **data_kwargs: Any) -> OMASGANConfig:
    """The paper's defaults for ``dataset`` (docs/design.md 3.3-3.5), with practical epoch budgets.

    The paper trains 500 epochs on MNIST; the defaults here are budgets a CPU can finish, and every
    one of them can be overridden (``task1.epochs=500``).
    """
    _choice("data", "dataset", dataset, DATASET_NAMES)
    data = DataConfig(dataset=dataset, **data_kwargs)
    if dataset == "synthetic":
        return OMASGANConfig(
            data=data,
            network=NetworkConfig(kind="mlp", latent_dim=2, g_width=128, d_width=128, depth=3),
            divergence=DivergenceConfig(name="gan"),
            task1=Task1Config(epochs=40, batch_size=100, lr_g=1e-3, lr_d=1e-3),
            task2=Task2Config(epochs=15, batch_size=100, bank_size=4096, mu=8.0, nu=20.0, lr_b=5e-4, lr_d=5e-4),
            task3=Task3Config(epochs=20, batch_size=100, lr_g=1e-3, lr_d=1e-3),
            j=JConfig(epochs=30, batch_size=100, lr=1e-3),
        )
    if dataset in ("digits", "tabular"):
        return OMASGANConfig(
            data=data,
            network=NetworkConfig(kind="mlp", latent_dim=16, g_width=256, d_width=256, depth=3, spectral_norm=True),
            divergence=DivergenceConfig(name="gan"),
            task1=Task1Config(epochs=60, batch_size=64, lr_g=5e-4, lr_d=5e-4),
            task2=Task2Config(epochs=30, batch_size=256, bank_size=1024, mu=0.2, nu=0.3),
            task3=Task3Config(epochs=50, batch_size=64),
            j=JConfig(epochs=50, batch_size=64),
        )
    kind = "dcgan" if dataset in _IMAGE_SETS_28 else "resnet"
    return OMASGANConfig(
        data=data,
        network=NetworkConfig(kind=kind, latent_dim=128, g_width=64, d_width=64, d_batchnorm=False, spectral_norm=True),
        divergence=DivergenceConfig(name="klwgan"),
        task1=Task1Config(epochs=20, batch_size=256),
        task2=Task2Config(epochs=5, batch_size=256, bank_size=1024, mu=0.2, nu=0.3),
        task3=Task3Config(epochs=5, batch_size=256),
        j=JConfig(epochs=5, batch_size=256),
    )
