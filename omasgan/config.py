"""Typed, validated configuration for one OMASGAN run.

Every section is a dataclass whose fields declare their default and the values they admit together
(``lr_g: float = learning_rate_field()``, ``mu: float = setting(0.2, at_least(0.0))``: see
:mod:`omasgan.config_rules`); it checks them, and then its cross-field rules, when it is built, so an
invalid value is rejected with one line naming it and what is allowed, before any data is read or
any network is built.  A whole config is loaded from a nested dict, a JSON or a YAML file, and
overridden with dotted keys (``task2.mu=0.2``), whose values are parsed as YAML scalars.

``default_config(dataset)`` gives the paper's defaults for a data set (docs/design.md 3.3-3.5):
synthetic Q = 4096, N = 100, mu = 8, nu = 20; image sets Q = 1024, N = 256, mu = 0.2, nu = 0.3;
alpha = 0.3, beta = 1, gamma = 0.7, delta = 0.4 (alpha + delta = 0.7); zeta = 0.5.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from .config_rules import (OneOf, Range, at_least, batch_size_field, beta1_field, beta2_field, between, check_fields,
                           check_value, d_steps_field, epochs_field, learning_rate_field, out_of_range, setting)
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


class Section:
    """A config section: a dataclass whose fields are checked against their declared rules when it
    is built (:func:`~omasgan.config_rules.check_fields`), then against its own cross-field rules."""

    SECTION: ClassVar[str]
    """The section's key in a config (``task2``): the first part of every dotted key and error line."""

    def __post_init__(self) -> None:
        check_fields(self, f"{self.SECTION}.")
        self.check_rules()

    def check_rules(self) -> None:
        """Rules that tie several fields together; a section with some overrides this."""


DATASET = OneOf(DATASET_NAMES)


@dataclass
class DataConfig(Section):
    """Which data, which protocol (docs/design.md section 4) and how the splits are cut.

    ``image_size`` = S enlarges every image (training, validation and test splits, and what
    ``omasgan score`` reads) to S x S pixels, bilinearly, after scaling to [-1, 1]
    (:func:`omasgan.transform.resize_images`); null keeps the native size.  MNIST at 32 is what the
    paper's public code trains on, and what ``network.kind = resnet`` takes.  It must be at least
    the data set's own size (checked against its files by
    :func:`omasgan.data.registry.validate_data_request`).
    """

    SECTION: ClassVar[str] = "data"
    dataset: str = setting("digits", DATASET)
    protocol: str = setting("loo", OneOf(PROTOCOL_NAMES))
    holdout: int | None = 0
    data_root: str | None = None
    split_seed: int = setting(0, Range(out_of_range("be >= 0"), low=0))
    val_fraction: float = setting(0.1, between(0.0, 1.0, low_open=True, high_open=True))
    val_anomaly_fraction: float = setting(0.05, between(
        0.0, 1.0, low_open=True,
        note=" (the validation split needs anomalies: its AUROC chooses configs and thresholds)"))
    ood_dataset: str | None = None
    download: bool = False
    max_train: int | None = setting(None, Range(out_of_range("be >= 1 or null"), low=1, nullable=True))
    tabular_path: str | None = None
    label_column: str | int = "label"
    synthetic_n_per_class: int = setting(1000, Range("must be >= 2", low=2))
    image_size: int | None = setting(None, Range(
        out_of_range(f"be an integer in 1..{MAX_IMAGE_SIZE} or null (the native size)"),
        low=1, high=MAX_IMAGE_SIZE, finite=True, nullable=True))

    def check_rules(self) -> None:
        """The anomaly data set of protocol ``ood``, the holdout class of the others, and
        ``image_size`` on image data sets only."""
        if self.protocol == "ood":
            if self.ood_dataset is None:
                raise ConfigError("data.protocol='ood' needs data.ood_dataset (the anomaly data set)")
            check_value("data.ood_dataset", self.ood_dataset, DATASET)
        elif self.holdout is None:
            raise ConfigError(f"data.holdout is required for protocol {self.protocol!r}; give a class label")
        if self.image_size is not None:
            vectors = [d for d in (self.dataset, self.ood_dataset if self.protocol == "ood" else None)
                       if d in ("synthetic", "tabular")]
            if vectors:
                raise ConfigError(f"data.image_size={self.image_size} applies to image data sets only; "
                                  f"{vectors[0]!r} is not one: leave data.image_size null")


@dataclass
class NetworkConfig(Section):
    """Architectures of G/B (generator family) and D/C/J (discriminator family), docs/design.md 3.7.

    Two switches bring ``kind = resnet`` to the BigGAN network of the paper's public code (both off
    by default, which keeps the SN-GAN ResNet as it was; ``resnet`` only):
    ``g_spectral_norm`` spectrally normalises every layer of G, B and G' (BigGAN's ``G_param = SN``);
    ``init = n02`` draws every convolution and linear weight of G and D from N(0, 0.02) and leaves
    the biases at PyTorch's default (BigGAN's ``--G_init N02 --D_init N02``); ``default`` is each
    family's own initialisation.
    """

    SECTION: ClassVar[str] = "network"
    kind: str = setting("mlp", OneOf(NETWORK_KINDS))
    latent_dim: int = setting(16, at_least(1))
    g_width: int = setting(256, at_least(1))
    d_width: int = setting(256, at_least(1))
    depth: int = setting(3, at_least(1))
    g_batchnorm: bool = True
    d_batchnorm: bool = False
    spectral_norm: bool = False
    g_spectral_norm: bool = False
    init: str = setting("default", OneOf(NETWORK_INITS))

    def check_rules(self) -> None:
        """``g_spectral_norm`` and ``init`` apply to ``kind = resnet`` only."""
        if self.kind != "resnet":
            for name, value, off in (("g_spectral_norm", self.g_spectral_norm, False), ("init", self.init, "default")):
                if value != off:
                    shown = str(value).lower() if isinstance(value, bool) else repr(value)
                    raise ConfigError(f"network.{name}={shown} applies to network.kind=resnet only; "
                                      f"network.kind is {self.kind!r}")


@dataclass
class DivergenceConfig(Section):
    """The distribution metric shared by Tasks 1-3 and J (docs/design.md 3.1).

    ``klwgan_tau`` is the KL-WGAN temperature, ``gp_weight`` the WGAN-GP lambda, ``r1_gamma`` the
    weight of the optional R1 penalty (gamma/2 * E||grad_x v(x)||^2 on P-side samples).
    """

    SECTION: ClassVar[str] = "divergence"
    name: str = setting("gan", OneOf(DIVERGENCES))
    klwgan_tau: float = setting(5.0, at_least(0.0, strict=True))
    gp_weight: float = setting(10.0, at_least(0.0))
    r1_gamma: float = setting(0.0, at_least(0.0))
    generator_loss: str = setting("non_saturating", OneOf(GENERATOR_LOSSES))


@dataclass
class Task1Config(Section):
    """Task 1: the base f-GAN (G, D) on the normal data."""

    SECTION: ClassVar[str] = "task1"
    epochs: int = epochs_field(60)
    batch_size: int = batch_size_field(128)
    lr_g: float = learning_rate_field()
    lr_d: float = learning_rate_field()
    beta1: float = beta1_field()
    beta2: float = beta2_field()
    d_steps: int = d_steps_field()


@dataclass
class Task2Config(Section):
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

    SECTION: ClassVar[str] = "task2"
    epochs: int = epochs_field(20)
    batch_size: int = batch_size_field(256)
    bank_size: int = setting(1024, at_least(1))
    mu: float = setting(0.2, at_least(0.0))
    nu: float = setting(0.3, at_least(0.0))
    p: float = setting(2.0, at_least(1.0))
    bank_refresh: int = setting(1, at_least(1))
    eps: float = setting(1e-6, at_least(0.0, strict=True))
    lr_b: float = learning_rate_field()
    lr_d: float = learning_rate_field()
    beta1: float = beta1_field()
    beta2: float = beta2_field()
    d_steps: int = d_steps_field(low=0)
    reference: str = setting("generator", OneOf(TASK2_REFERENCES))
    boundaries: int = setting(1, at_least(1))
    diversity: float = setting(1.0, at_least(0.0))
    feature_space: str = setting("pixel", OneOf(FEATURE_SPACES))
    ae_epochs: int = epochs_field(20)
    ae_latent_dim: int = setting(0, at_least(0))
    ae_width: int = setting(32, at_least(1))
    ae_lr: float = learning_rate_field(1e-3)


@dataclass
class Task3Config(Section):
    """Task 3 (eq. 5): G' and C retrained with the boundary samples.

    Admissible region (paper section 3.4): alpha + delta in [0, 1] and gamma >= alpha + delta - 1
    (so gamma may be negative when alpha + delta < 1); alpha, beta, delta >= 0.
    """

    SECTION: ClassVar[str] = "task3"
    epochs: int = epochs_field(20)
    batch_size: int = batch_size_field(128)
    alpha: float = setting(0.3, at_least(0.0))
    beta: float = setting(1.0, at_least(0.0))
    gamma: float = setting(0.7, Range("must be a finite number", finite=True))
    delta: float = setting(0.4, at_least(0.0))
    lr_g: float = learning_rate_field()
    lr_d: float = learning_rate_field()
    beta1: float = beta1_field()
    beta2: float = beta2_field()
    d_steps: int = d_steps_field()

    def check_rules(self) -> None:
        """The admissible region of (alpha, gamma, delta)."""
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


@dataclass
class JConfig(Section):
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

    SECTION: ClassVar[str] = "j"
    epochs: int = epochs_field(20)
    batch_size: int = batch_size_field(128)
    zeta: float = setting(0.5, between(0.0, 1.0))
    lr: float = learning_rate_field()
    beta1: float = beta1_field()
    beta2: float = beta2_field()
    init: str = setting("scratch", OneOf(J_INITS))
    refine_steps: int = setting(0, at_least(0))
    refine_weight: float = setting(1.0, at_least(0.0))
    refine_margin: float = setting(1.0, at_least(0.0))
    refine_lr: float = learning_rate_field()
    refine_bank: int = setting(1024, at_least(1))
    refine_patience: int = setting(0, at_least(0))
    refine_holdout: float = setting(0.1, between(0.0, 1.0, low_open=True, high_open=True))
    score: str = setting("j", OneOf(J_SCORES))
    fusion_scaling: str = setting("standard", OneOf(FUSION_SCALINGS))


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
    seed: int = setting(0, Range(out_of_range("be >= 0"), low=0))
    threads: int = setting(1, Range(out_of_range("be an integer >= 1"), low=1, integer=True))
    """torch CPU threads of every stage and of scoring.  Part of a run's identity: on the CPU the
    thread count changes the order of floating-point reductions, and GAN training amplifies that
    (the same seed at 1 and at 2 threads can end far apart), so it is in the stage-cache key and in
    every result row."""

    def __post_init__(self) -> None:
        for name, kind in _section_types().items():
            if not isinstance(getattr(self, name), kind):
                raise ConfigError(f"config section {name!r} must be a {kind.__name__}")
        check_fields(self, "")

    # ---- conversion -------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """A nested plain dict (JSON/YAML serialisable) that ``from_dict`` reads back."""
        return dataclasses.asdict(self)

    def flat(self) -> dict[str, Any]:
        """``{"task2.mu": 0.2, ...}``: every leaf under its dotted key."""
        return _flatten(self.to_dict())

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


@functools.cache
def _section_types() -> dict[str, type]:
    """``{"data": DataConfig, ...}``: the sections of :class:`OMASGANConfig`, in its order."""
    hints = typing.get_type_hints(OMASGANConfig)
    return {f.name: hints[f.name] for f in dataclasses.fields(OMASGANConfig) if dataclasses.is_dataclass(hints[f.name])}


def _flatten(raw: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Every leaf of a nested dict under its dotted key, in the dict's order."""
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
    check_value("data.dataset", dataset, DATASET)
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
