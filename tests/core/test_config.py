"""Config validation (one clear line per bad value), loading, overrides and paper defaults."""

import json

import pytest

from omasgan.config import (
    DIVERGENCES,
    OMASGANConfig,
    Task3Config,
    default_config,
    parse_override,
)
from omasgan.errors import ConfigError


def test_paper_defaults():
    syn = default_config("synthetic")
    assert (syn.task2.bank_size, syn.task2.batch_size, syn.task2.mu, syn.task2.nu) == (4096, 100, 8.0, 20.0)
    mnist = default_config("mnist")
    assert (mnist.task2.bank_size, mnist.task2.batch_size, mnist.task2.mu, mnist.task2.nu) == (1024, 256, 0.2, 0.3)
    assert mnist.network.kind == "dcgan" and mnist.network.latent_dim == 128
    for config in (syn, mnist, default_config("digits")):
        t3 = config.task3
        assert (t3.alpha, t3.beta, t3.gamma, t3.delta) == (0.3, 1.0, 0.7, 0.4)
        assert t3.alpha + t3.delta == pytest.approx(0.7)
        assert config.j.zeta == 0.5


@pytest.mark.parametrize("dataset", ["synthetic", "digits"])
@pytest.mark.parametrize(
    "override, message",
    [
        ("divergence.name=kll", r"divergence.name='kll' is not allowed; choose one of: kl, reverse_kl"),
        ("network.kind=cnn", r"network.kind='cnn' is not allowed; choose one of: mlp, dcgan, resnet"),
        ("data.dataset=mnsit", r"data.dataset='mnsit' is not allowed"),
        ("data.protocol=lol", r"data.protocol='lol' is not allowed; choose one of: loo, occ, ood"),
        ("task2.mu=-1", r"task2.mu=-1.0 is out of range; it must be a finite number >= 0"),
        ("task2.nu=-0.5", r"task2.nu=-0.5 is out of range"),
        ("task2.bank_size=-3", r"task2.bank_size=-3 is out of range"),
        ("task2.batch_size=-3", r"task2.batch_size=-3 is out of range"),
        ("task3.alpha=0.8", r"alpha \+ task3.delta = 1.2 .* outside the admissible region; it must lie in \[0, 1\]"),
        ("j.zeta=1.5", r"j.zeta=1.5 is out of range; it must lie in \[0, 1\]"),
        # refused when the config is built, not by load_splits after Ray started
        ("data.val_anomaly_fraction=0", r"data.val_anomaly_fraction=0.0 is out of range; it must lie in \(0, 1\]"),
        ("data.split_seed=-1", r"data.split_seed=-1 is out of range; it must be >= 0"),
        ("task2.mu=abc", r"task2.mu='abc' has the wrong type; expected a number"),
        ("task2.epochs=2.5", r"task2.epochs=2.5 has the wrong type; expected an integer"),
        # the shared optimiser fields: the line names the field itself (task1.lr_g, not task1.lr)
        ("task1.lr_g=0", r"^task1.lr_g=0.0 is out of range; it must be a finite number > 0.0$"),
        ("task2.lr_b=-1", r"^task2.lr_b=-1.0 is out of range; it must be a finite number > 0.0$"),
        ("task3.lr_d=nan", r"^task3.lr_d=nan is out of range; it must be a finite number > 0.0$"),
        ("j.lr=0", r"^j.lr=0.0 is out of range; it must be a finite number > 0.0$"),
        ("task3.beta1=1", r"^task3.beta1=1.0 is out of range; it must lie in \[0, 1\)$"),
        ("j.beta2=-0.1", r"^j.beta2=-0.1 is out of range; it must lie in \[0, 1\)$"),
        ("task1.d_steps=0", r"^task1.d_steps=0 is out of range; it must be a finite number >= 1$"),
        ("task2.d_steps=-1", r"^task2.d_steps=-1 is out of range; it must be a finite number >= 0$"),
        ("task1.epochs=0", r"^task1.epochs=0 is out of range; it must be a finite number >= 1$"),
        ("j.batch_size=1", r"^j.batch_size=1 is out of range; it must be a finite number >= 2$"),
        ("task2.muu=1", r"unknown config key 'task2.muu'; section 'task2' has: "),
        ("tsk2.mu=1", r"unknown config key 'tsk2.mu'"),
        # the issue-12 variant switches
        ("task2.boundaries=0", r"task2.boundaries=0 is out of range; it must be a finite number >= 1"),
        ("task2.boundaries=1.5", r"task2.boundaries=1.5 has the wrong type; expected an integer"),
        ("task2.diversity=-1", r"task2.diversity=-1.0 is out of range; it must be a finite number >= 0"),
        ("task2.feature_space=latent", r"task2.feature_space='latent' is not allowed; choose one of: pixel, critic, "
                                       r"autoencoder"),
        ("task2.ae_epochs=0", r"task2.ae_epochs=0 is out of range"),
        ("task2.ae_latent_dim=-2", r"task2.ae_latent_dim=-2 is out of range"),
        ("task2.ae_lr=0", r"task2.ae_lr=0.0 is out of range; it must be a finite number > 0"),
        ("j.refine_steps=-1", r"j.refine_steps=-1 is out of range; it must be a finite number >= 0"),
        ("j.refine_weight=-0.1", r"j.refine_weight=-0.1 is out of range"),
        ("j.refine_margin=nan", r"j.refine_margin=nan is out of range"),
        ("j.refine_bank=0", r"j.refine_bank=0 is out of range"),
        ("j.refine_patience=-3", r"j.refine_patience=-3 is out of range"),
        ("j.refine_holdout=1", r"j.refine_holdout=1.0 is out of range; it must lie in \(0, 1\)"),
        ("j.score=logit", r"j.score='logit' is not allowed; choose one of: j, critic, fusion"),
        ("j.fusion_scaling=minmax", r"j.fusion_scaling='minmax' is not allowed; choose one of: standard, robust"),
    ],
)
def test_bad_values_name_the_value_and_what_is_allowed(dataset, override, message):
    with pytest.raises(ConfigError, match=message):
        default_config(dataset).with_overrides([override])


def test_every_number_field_declares_its_bounds():
    """A number field without a declared rule would take any value unchecked; only the data set's
    class label and label column may."""
    import dataclasses
    import typing

    from omasgan.config_rules import RULE

    top = typing.get_type_hints(OMASGANConfig)
    sections = {"": OMASGANConfig, **{f"{name}.": kind for name, kind in top.items() if dataclasses.is_dataclass(kind)}}
    unbounded = []
    for prefix, kind in sections.items():
        hints = typing.get_type_hints(kind)
        for item in dataclasses.fields(kind):
            types = set(typing.get_args(hints[item.name])) or {hints[item.name]}
            if types & {int, float} and RULE not in item.metadata:
                unbounded.append(prefix + item.name)
    assert unbounded == ["data.holdout", "data.label_column"]


def test_gamma_admissible_bound():
    # alpha + delta = 0.7, so gamma may go down to -0.3 but not below
    Task3Config(alpha=0.3, delta=0.4, gamma=-0.3)
    with pytest.raises(ConfigError, match=r"task3.gamma=-0.5 is below alpha \+ delta - 1 = -0.3"):
        Task3Config(alpha=0.3, delta=0.4, gamma=-0.5)
    with pytest.raises(ConfigError, match=r"task3.gamma=-0.1 is below alpha \+ delta - 1 = 0"):
        Task3Config(alpha=0.5, delta=0.5, gamma=-0.1)


def test_every_divergence_is_accepted():
    for name in DIVERGENCES:
        assert default_config("synthetic").with_overrides([f"divergence.name={name}"]).divergence.name == name


def test_round_trip_dict_json_yaml(tmp_path):
    config = default_config("mnist", holdout=3).with_overrides(["task2.mu=0.5", "seed=7"])
    assert OMASGANConfig.from_dict(config.to_dict()) == config
    (tmp_path / "c.json").write_text(json.dumps(config.to_dict()))
    assert OMASGANConfig.load(tmp_path / "c.json") == config
    import yaml

    (tmp_path / "c.yaml").write_text(yaml.safe_dump(config.to_dict()))
    assert OMASGANConfig.load(tmp_path / "c.yaml") == config


def test_partial_file_merges_over_defaults(tmp_path):
    (tmp_path / "p.yaml").write_text("task2:\n  mu: 1.5\nj:\n  zeta: 0.25\n")
    from omasgan.config import read_config_file

    config = default_config("synthetic").merged(read_config_file(tmp_path / "p.yaml"))
    assert config.task2.mu == 1.5 and config.j.zeta == 0.25 and config.task2.nu == 20.0


def test_overrides_parse_yaml_scalars():
    assert parse_override("task2.mu=0.2") == ("task2.mu", 0.2)
    assert parse_override("network.spectral_norm=true") == ("network.spectral_norm", True)
    assert parse_override("data.max_train=null") == ("data.max_train", None)
    with pytest.raises(ConfigError, match="not of the form"):
        parse_override("task2.mu")


def test_flat_keys():
    flat = default_config("synthetic").flat()
    assert flat["task2.mu"] == 8.0 and flat["seed"] == 0 and "data.dataset" in flat


def test_ood_needs_second_dataset():
    with pytest.raises(ConfigError, match="needs data.ood_dataset"):
        default_config("mnist").with_overrides(["data.protocol=ood"])


# ---- issue 12: the variant switches ---------------------------------------------------------------

def test_variant_switches_default_to_the_paper():
    for dataset in ("synthetic", "digits", "mnist", "cifar10"):
        config = default_config(dataset)
        assert (config.task2.boundaries, config.task2.feature_space) == (1, "pixel")
        assert (config.j.refine_steps, config.j.score) == (0, "j")


def test_autoencoder_code_too_large_for_vectors_fails_before_training():
    from omasgan.stages.feature_space import check_feature_space

    config = default_config("synthetic").with_overrides(["task2.feature_space=autoencoder", "task2.ae_latent_dim=2"])
    with pytest.raises(ConfigError, match=r"task2.ae_latent_dim=2 must be smaller than the 2 features"):
        check_feature_space(config, (2,), False)
    check_feature_space(config.with_overrides(["task2.ae_latent_dim=0"]), (2,), False)  # 0 picks a code size
