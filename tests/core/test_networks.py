"""Tests for omasgan.networks: shapes, output ranges, gradients, spectral norm, validation, modes."""

from __future__ import annotations

import copy
import json

import pytest
import torch
from torch import nn
from torch.nn.utils import parametrize

from omasgan.errors import ConfigError
from omasgan.networks import (
    NETWORKS,
    build_discriminator,
    build_generator,
    check_network_shape,
)

from helpers import REPO

W = 8  # small widths keep the whole file fast on 2 CPU cores
LATENT = 4

VALID = [
    ("mlp", (2,)),
    ("mlp", (1, 8, 8)),
    ("mlp", (5,)),
    ("dcgan", (1, 28, 28)),
    ("dcgan", (3, 28, 28)),
    ("dcgan", (1, 32, 32)),
    ("dcgan", (3, 32, 32)),
    ("resnet", (1, 32, 32)),
    ("resnet", (3, 32, 32)),
]
IDS = [f"{k}-{'x'.join(map(str, s))}" for k, s in VALID]


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


def _gen(kind, shape, **kw):
    kw.setdefault("width", W)
    kw.setdefault("depth", 2)
    return build_generator(kind, shape, LATENT, **kw)


def _disc(kind, shape, **kw):
    kw.setdefault("width", W)
    kw.setdefault("depth", 2)
    return build_discriminator(kind, shape, **kw)


def _n_params(net: nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())


def _weighted_modules(net: nn.Module):
    return [m for m in net.modules() if isinstance(m, (nn.Linear, nn.Conv2d, nn.ConvTranspose2d))]


def test_networks_constant():
    assert NETWORKS == ("mlp", "dcgan", "resnet")


@pytest.mark.parametrize("kind,shape", VALID, ids=IDS)
def test_shapes_and_ranges(kind, shape):
    g = _gen(kind, shape, output="tanh")
    d = _disc(kind, shape)
    assert g.sample_shape == shape and g.latent_dim == LATENT and g.kind == kind and d.kind == kind
    for mode in ("train", "eval"):
        g.train(mode == "train")
        d.train(mode == "train")
        x = g(3.0 * torch.randn(5, LATENT))  # large z pushes pre-activations out of tanh's linear range
        assert x.shape == (5, *shape)
        assert x.min() >= -1.0 and x.max() <= 1.0
        v = d(x)
        assert v.shape == (5,)
        assert torch.isfinite(v).all()
    # a batch of one in eval mode still gives a (1,) logit, not a 0-d tensor
    assert d(torch.randn(1, *shape)).shape == (1,)


@pytest.mark.parametrize("kind,shape", [("mlp", (2,)), ("dcgan", (1, 28, 28)), ("resnet", (3, 32, 32))])
def test_output_activation(kind, shape):
    lin = _gen(kind, shape, output="linear")
    tanh = _gen(kind, shape, output="tanh")
    assert not any(isinstance(m, nn.Tanh) for m in lin.modules())
    assert any(isinstance(m, nn.Tanh) for m in tanh.modules())


def test_linear_output_unbounded():
    g = _gen("mlp", (2,), output="linear", batchnorm=False)
    with torch.no_grad():
        g.net[-3].bias.fill_(5.0)  # final Linear (before the identity and the reshape)
    assert g(torch.randn(4, LATENT)).abs().min() > 1.0


@pytest.mark.parametrize("kind,shape", VALID, ids=IDS)
@pytest.mark.parametrize("sn", [False, True], ids=["plain", "sn"])
def test_gradients_reach_every_parameter(kind, shape, sn):
    g = _gen(kind, shape)
    d = _disc(kind, shape, spectral_norm=sn)
    g.train()
    d.train()
    d(g(torch.randn(4, LATENT))).mean().backward()
    for net in (g, d):
        for name, p in net.named_parameters():
            assert p.grad is not None, name
            assert p.grad.abs().sum() > 0, name


@pytest.mark.parametrize("kind,shape", VALID, ids=IDS)
def test_batch_of_two_in_train_mode(kind, shape):
    g = _gen(kind, shape).train()
    d = _disc(kind, shape).train()
    x = g(torch.randn(2, LATENT))
    assert x.shape == (2, *shape)
    assert d(x).shape == (2,)


@pytest.mark.parametrize("kind,shape", [("mlp", (2,)), ("dcgan", (1, 28, 28)), ("dcgan", (3, 32, 32)),
                                        ("resnet", (1, 32, 32))])
def test_parameter_count_grows_with_width(kind, shape):
    for build in (_gen, _disc):
        assert _n_params(build(kind, shape, width=4)) < _n_params(build(kind, shape, width=8))


def test_mlp_parameter_count_grows_with_depth_and_dcgan_ignores_depth():
    assert _n_params(_gen("mlp", (2,), depth=1)) < _n_params(_gen("mlp", (2,), depth=3))
    assert _n_params(_disc("mlp", (2,), depth=1)) < _n_params(_disc("mlp", (2,), depth=3))
    for kind, shape in (("dcgan", (1, 28, 28)), ("resnet", (1, 32, 32))):
        assert _n_params(_gen(kind, shape, depth=1)) == _n_params(_gen(kind, shape, depth=5))
        assert _n_params(_disc(kind, shape, depth=1)) == _n_params(_disc(kind, shape, depth=5))


def test_dcgan_layer_plan():
    g = build_generator("dcgan", (1, 28, 28), 128, width=64)
    convt = [m for m in g.modules() if isinstance(m, nn.ConvTranspose2d)]
    assert [(m.in_channels, m.out_channels) for m in convt] == [(256, 128), (128, 64)]
    g32 = build_generator("dcgan", (3, 32, 32), 128, width=64)
    convt = [m for m in g32.modules() if isinstance(m, nn.ConvTranspose2d)]
    assert [(m.in_channels, m.out_channels) for m in convt] == [(512, 256), (256, 128), (128, 64)]
    d = build_discriminator("dcgan", (1, 28, 28), width=64)
    convs = [m for m in d.modules() if isinstance(m, nn.Conv2d)]
    assert [(m.in_channels, m.out_channels) for m in convs] == [(1, 64), (64, 128)]
    assert sum(isinstance(m, nn.BatchNorm2d) for m in d.modules()) == 1  # none on the first conv
    # DCGAN initialisation: N(0, 0.02)
    w = torch.cat([m.weight.flatten() for m in _weighted_modules(g)])
    assert abs(w.std().item() - 0.02) < 0.002


@pytest.mark.parametrize("kind,shape", [("mlp", (2,)), ("mlp", (1, 8, 8)), ("dcgan", (1, 28, 28)),
                                        ("dcgan", (3, 32, 32))])
def test_spectral_norm_when_requested(kind, shape):
    plain = _disc(kind, shape, spectral_norm=False)
    assert not any(parametrize.is_parametrized(m) for m in plain.modules())
    sn = _disc(kind, shape, spectral_norm=True)
    layers = _weighted_modules(sn)
    assert layers and all(parametrize.is_parametrized(m, "weight") for m in layers)
    assert not any(isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)) for m in sn.modules())
    # generators never get spectral norm
    assert not any(parametrize.is_parametrized(m) for m in _gen(kind, shape).modules())


@pytest.mark.parametrize("shape", [(1, 32, 32), (3, 32, 32)])
def test_resnet_discriminator_always_spectral_norm(shape):
    d = _disc("resnet", shape, spectral_norm=False, batchnorm=True)
    layers = _weighted_modules(d)
    assert len(layers) == 11  # 3 + 3 + 2 + 2 convs + the final linear
    assert all(parametrize.is_parametrized(m, "weight") for m in layers)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in d.modules())


def test_spectral_norm_bounds_largest_singular_value():
    d = _disc("mlp", (2,), spectral_norm=True).train()
    for _ in range(30):  # power iterations run in train-mode forwards
        d(torch.randn(8, 2))
    for m in _weighted_modules(d):
        sigma = torch.linalg.matrix_norm(m.weight.detach(), ord=2)
        assert sigma.item() == pytest.approx(1.0, abs=1e-3)


def test_batchnorm_flag():
    assert any(isinstance(m, nn.BatchNorm1d) for m in _gen("mlp", (2,)).modules())
    assert not any(isinstance(m, nn.BatchNorm1d) for m in _gen("mlp", (2,), batchnorm=False).modules())
    assert not any(isinstance(m, nn.BatchNorm1d) for m in _disc("mlp", (2,), batchnorm=True).modules())
    for kind, shape in (("dcgan", (1, 28, 28)), ("resnet", (1, 32, 32))):
        assert not any(isinstance(m, nn.BatchNorm2d) for m in _gen(kind, shape, batchnorm=False).modules())
        assert any(isinstance(m, nn.BatchNorm2d) for m in _gen(kind, shape, batchnorm=True).modules())
    assert not any(isinstance(m, nn.BatchNorm2d) for m in _disc("dcgan", (1, 28, 28), batchnorm=False).modules())


@pytest.mark.parametrize("kind,shape", VALID, ids=IDS)
def test_eval_mode_is_deterministic_and_per_sample(kind, shape):
    g = _gen(kind, shape)
    d = _disc(kind, shape, spectral_norm=True)
    g.train()
    d.train()
    for _ in range(2):  # move BatchNorm running statistics and spectral-norm vectors off their initial values
        d(g(torch.randn(4, LATENT)))
    g.eval()
    d.eval()
    z = torch.randn(6, LATENT)
    with torch.no_grad():
        x1, x2 = g(z), g(z)
        v1, v2 = d(x1), d(x1)
        v_part = d(x1[:2])
    assert torch.equal(x1, x2)
    assert torch.equal(v1, v2)
    torch.testing.assert_close(v_part, v1[:2])  # scores do not depend on the rest of the batch


@pytest.mark.parametrize("kind,shape", [("mlp", (2,)), ("dcgan", (1, 28, 28)), ("resnet", (1, 32, 32))])
def test_copy_and_state_dict_round_trip(kind, shape):
    """Task 2 starts B from G's weights and Task 3 starts C from D's: copies must be exact."""
    g = _gen(kind, shape).eval()
    d = _disc(kind, shape, spectral_norm=True).eval()
    z = torch.randn(3, LATENT)
    with torch.no_grad():
        x = g(z)
        v = d(x)
        assert torch.equal(copy.deepcopy(g)(z), x)
        assert torch.equal(copy.deepcopy(d)(x), v)
        torch.manual_seed(1)
        d2 = _disc(kind, shape, spectral_norm=True)
        d2.load_state_dict(d.state_dict())
        assert torch.equal(d2.eval()(x), v)


def test_list_shape_and_numpy_like_ints_accepted():
    g = build_generator("dcgan", [1, 28, 28], LATENT, width=W)
    assert g.sample_shape == (1, 28, 28)
    assert build_discriminator("mlp", torch.Size([2]), width=W)(torch.randn(3, 2)).shape == (3,)
    assert build_generator("mlp", (2,), torch.tensor(3), width=W).latent_dim == 3


@pytest.mark.parametrize("kind,shape", VALID, ids=IDS)
def test_check_network_shape_accepts_valid(kind, shape):
    assert check_network_shape(kind, shape) is None


@pytest.mark.parametrize(
    "kind,shape,fragment",
    [
        ("dcgan", (1, 8, 8), "got (1, 8, 8)"),
        ("dcgan", (2, 28, 28), "got (2, 28, 28)"),
        ("dcgan", (1, 28, 32), "got (1, 28, 32)"),
        ("dcgan", (28, 28), "got (28, 28)"),
        ("dcgan", (2,), "got (2,)"),
        ("resnet", (1, 28, 28), "got (1, 28, 28)"),
        ("resnet", (4, 32, 32), "got (4, 32, 32)"),
        ("mlp", (), "got ()"),
        ("mlp", (0,), "got (0,)"),
        ("mlp", (2, -1), "got (2, -1)"),
        ("mlp", (2.5,), "got (2.5,)"),
        ("mlp", 2, "got 2"),
        ("mlp", "2", "got '2'"),
    ],
)
def test_invalid_shapes(kind, shape, fragment):
    for call in (lambda: check_network_shape(kind, shape),
                 lambda: build_generator(kind, shape, LATENT),
                 lambda: build_discriminator(kind, shape)):
        with pytest.raises(ConfigError) as info:
            call()
        msg = str(info.value)
        assert fragment in msg and f"network {kind!r}" in msg and "\n" not in msg


def test_dcgan_shape_message_exact():
    with pytest.raises(ConfigError, match=r"^network 'dcgan' takes images of shape \(C, 28, 28\) or "
                                          r"\(C, 32, 32\) with C in \{1, 3\}; got \(1, 8, 8\)$"):
        check_network_shape("dcgan", (1, 8, 8))


@pytest.mark.parametrize("kind", ["cnn", "MLP", "", None, 3])
def test_unknown_kind(kind):
    for call in (lambda: check_network_shape(kind, (2,)),
                 lambda: build_generator(kind, (2,), LATENT),
                 lambda: build_discriminator(kind, (2,))):
        with pytest.raises(ConfigError) as info:
            call()
        assert str(info.value) == f"unknown network {kind!r}; choose one of: mlp, dcgan, resnet"


@pytest.mark.parametrize("name", ["width", "depth"])
@pytest.mark.parametrize("value", [0, -3, 2.0, "8", True, None])
def test_invalid_width_depth(name, value):
    for call in (lambda: build_generator("mlp", (2,), LATENT, **{name: value}),
                 lambda: build_discriminator("dcgan", (1, 28, 28), **{name: value})):
        with pytest.raises(ConfigError) as info:
            call()
        assert str(info.value) == f"{name} must be an integer >= 1; got {value!r}"


@pytest.mark.parametrize("value", [0, -1, 1.5, False])
def test_invalid_latent_dim(value):
    with pytest.raises(ConfigError, match=rf"^latent_dim must be an integer >= 1; got {value!r}$"):
        build_generator("resnet", (3, 32, 32), value)


@pytest.mark.parametrize("value", ["sigmoid", "Tanh", None])
def test_invalid_output(value):
    with pytest.raises(ConfigError) as info:
        build_generator("mlp", (2,), LATENT, output=value)
    assert str(info.value) == f"output must be one of: tanh, linear; got {value!r}"


def test_invalid_flags():
    with pytest.raises(ConfigError, match="^batchnorm must be true or false; got 'yes'$"):
        build_generator("mlp", (2,), LATENT, batchnorm="yes")
    with pytest.raises(ConfigError, match="^spectral_norm must be true or false; got 1$"):
        build_discriminator("mlp", (2,), spectral_norm=1)
    with pytest.raises(ConfigError, match="^batchnorm must be true or false; got None$"):
        build_discriminator("dcgan", (1, 28, 28), batchnorm=None)


def test_config_error_is_value_error():
    with pytest.raises(ValueError):
        check_network_shape("cnn", (2,))


# ------------------------------------------------------- resnet: the BigGAN options and 32-px MNIST
def _state_digest(net: nn.Module) -> str:
    import hashlib

    digest = hashlib.sha256()
    for name, tensor in sorted(net.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().contiguous().numpy().tobytes())
    return digest.hexdigest()


def test_resnet_default_weights_are_unchanged_bit_for_bit():
    """The defaults (init 'default', no spectral norm in G) build the SN-GAN ResNet exactly as before
    the BigGAN options existed: these digests were taken from that code at seed 0."""
    from omasgan.config import NetworkConfig
    from omasgan.stages.common import new_critic, new_generator

    torch.manual_seed(0)
    g = build_generator("resnet", (1, 32, 32), 16, width=8)
    d = build_discriminator("resnet", (1, 32, 32), width=8)
    assert _state_digest(g) == "dd0362b82df5dd0bd6323f704775d7bc73e689de50b5ae4de26ecc16f6077afd"
    assert _state_digest(d) == "9deb7991d34e6e052dc7b73f848de3495596be8bb4959997b8b54c9fe34f1f46"
    network = NetworkConfig(kind="resnet", latent_dim=16, g_width=8, d_width=8)
    torch.manual_seed(0)
    assert _state_digest(new_generator(network, (1, 32, 32), True)) == _state_digest(g)
    assert _state_digest(new_critic(network, (1, 32, 32))) == _state_digest(d)


def test_resnet_biggan_options():
    g = _gen("resnet", (1, 32, 32), width=32, spectral_norm=True, init="n02").train()
    layers = _weighted_modules(g)
    assert len(layers) == 11  # the linear, 3 x (2 convs + shortcut), the output conv
    assert all(parametrize.is_parametrized(m, "weight") for m in layers)
    for _ in range(30):  # power iterations run in train-mode forwards
        g(torch.randn(8, LATENT))
    for m in layers:
        sigma = torch.linalg.matrix_norm(m.weight.detach().flatten(1), ord=2)
        assert sigma.item() == pytest.approx(1.0, abs=0.05)
    d = _disc("resnet", (1, 32, 32), width=32, init="n02")
    conv = d.blocks[1].conv1.parametrizations.weight.original  # 32 x 32 x 3 x 3 weights
    assert abs(conv.std().item() - 0.02) < 0.002 and abs(conv.mean().item()) < 0.002
    assert d.blocks[1].conv1.bias.abs().max() > 0  # PyTorch's default bias, not zeros
    torch.manual_seed(0)
    default = _disc("resnet", (1, 32, 32), width=32)
    assert default.blocks[1].conv1.bias.abs().max() == 0
    assert not any(parametrize.is_parametrized(m) for m in _gen("resnet", (1, 32, 32)).modules())


def test_resnet_only_options_are_refused_elsewhere():
    from omasgan.config import NetworkConfig

    with pytest.raises(ConfigError, match=r"^network 'dcgan' has no option for a spectrally normalised generator"):
        _gen("dcgan", (1, 28, 28), spectral_norm=True)
    with pytest.raises(ConfigError, match=r"^network 'mlp' has no option for init 'n02'; only 'resnet' has$"):
        _disc("mlp", (2,), init="n02")
    with pytest.raises(ConfigError, match=r"^init must be one of: default, n02; got 'ortho'$"):
        _gen("resnet", (1, 32, 32), init="ortho")
    with pytest.raises(ConfigError, match=r"^network.g_spectral_norm=true applies to network.kind=resnet only; "
                                          r"network.kind is 'dcgan'$"):
        NetworkConfig(kind="dcgan", g_spectral_norm=True)
    with pytest.raises(ConfigError, match=r"^network.init='n02' applies to network.kind=resnet only"):
        NetworkConfig(kind="mlp", init="n02")
    with pytest.raises(ConfigError, match=r"^network.init='N02' is not allowed; choose one of: default, n02$"):
        NetworkConfig(kind="resnet", init="N02")


def _stroke_digits(labels, seed: int):
    """MNIST-shaped uint8 images (N, 28, 28): faint noise plus a class-placed vertical and horizontal
    stroke, jittered by a pixel."""
    import numpy as np

    rng = np.random.default_rng(seed)
    images = rng.integers(0, 30, (len(labels), 28, 28)).astype(np.uint8)
    for i, c in enumerate(labels):
        dx, dy = rng.integers(-1, 2, 2)
        images[i, 4 + dy:24 + dy, 4 + 2 * c + dx:7 + 2 * c + dx] = 255
        images[i, 6 + 3 * (c % 5) + dy:8 + 3 * (c % 5) + dy, 6 + dx:22 + dx] = 200
    return images


def _write_stroke_mnist(root, per_class: int = 10):
    """A tiny MNIST in torchvision's layout under ``root`` (IDX files); returns the raw test images."""
    import numpy as np

    from test_data import write_idx_file

    folder = root / "MNIST" / "raw"
    folder.mkdir(parents=True)
    for prefix, n, seed in (("train", per_class, 0), ("t10k", 6, 1)):
        labels = np.repeat(np.arange(10), n)
        images = _stroke_digits(labels, seed)
        write_idx_file(folder / f"{prefix}-images-idx3-ubyte", images)
        write_idx_file(folder / f"{prefix}-labels-idx1-ubyte", labels.astype(np.uint8))
    return images


def _resnet32_config(root, **overrides):
    from omasgan.config import default_config

    base = {"data.data_root": str(root), "data.image_size": 32, "network.kind": "resnet", "network.latent_dim": 16,
            "network.g_width": 8, "network.d_width": 8, "task1.batch_size": 16, "task1.d_steps": 2,
            "task1.beta1": 0.0}
    return default_config("mnist").with_overrides({**base, **overrides})


def test_resnet_at_32_px_learns_on_mnist_shaped_data(tmp_path):
    """Task 1 with the SN-ResNet on 28x28 IDX images enlarged to 32x32 (about 3 s of CPU): D learns
    the KL-WGAN hinge (its loss falls to a fraction of where it started, and it ends with the data
    above +1 and G's samples below -1, which the untrained pair is not), and G's samples move towards
    the data (the distance between the mean images falls by more than 10%)."""
    from omasgan.data import load_splits
    from omasgan.stages import train_task1
    from omasgan.stages.common import new_critic, new_generator, seed_stage

    _write_stroke_mnist(tmp_path)
    config = _resnet32_config(tmp_path, **{"task1.epochs": 6, "task1.lr_g": 1e-3, "task1.lr_d": 1e-3})
    splits = load_splits("mnist", "loo", 0, data_root=str(tmp_path), image_size=32)
    x = splits.train_x
    assert x.shape[1:] == (1, 32, 32)

    def measure(generator, critic):
        """(mean critic value on the data, on G's samples, distance between the mean images)"""
        torch.manual_seed(1)
        with torch.no_grad():
            samples = generator.eval()(torch.randn(200, 16))
            return (float(critic.eval()(x).mean()), float(critic(samples).mean()),
                    float((samples.mean(0) - x.mean(0)).norm()))

    seed_stage(config.seed, "task1")
    _, fake_before, distance_before = measure(new_generator(config.network, (1, 32, 32), True),
                                              new_critic(config.network, (1, 32, 32)))
    result = train_task1(config, x, is_image=True)
    losses = result.history["loss_d"]
    assert min(losses) < 0.25 * losses[0], losses
    real, fake, distance = measure(result.modules["generator"], result.modules["discriminator"])
    assert fake_before > -1.0 and real > 1.0 and fake < -1.0, (fake_before, real, fake)
    assert distance < 0.9 * distance_before, (distance_before, distance)


def test_resnet_at_32_px_runs_end_to_end_and_scores_raw_28_px_input(tmp_path):
    """omasgan run's pipeline on 28x28 IDX data at data.image_size = 32 with the BigGAN options on:
    every stage trains, and the saved model (what `omasgan score` loads) scores raw 28x28 pixels
    exactly as the run scored its resized test split."""
    import numpy as np

    from omasgan.model_folder import SavedModel
    from omasgan.run import execute_run

    raw_test = _write_stroke_mnist(tmp_path / "data", per_class=6)
    config = _resnet32_config(tmp_path / "data", **{
        "network.g_spectral_norm": True, "network.init": "n02", "task1.epochs": 1, "task2.epochs": 1,
        "task2.batch_size": 16, "task2.bank_size": 32, "task3.epochs": 1, "task3.batch_size": 16, "j.epochs": 1,
        "j.batch_size": 16})
    outcome = execute_run(config, tmp_path / "run")
    assert outcome.splits.sample_shape == (1, 32, 32)
    assert set(outcome.result.stages) == {"task1", "task2", "task3", "j"}
    model = json.loads((tmp_path / "run" / "model.json").read_text())
    assert model["transform"]["sample_shape"] == [1, 28, 28] and model["transform"]["image_size"] == 32
    saved = SavedModel(tmp_path / "run")
    stored = np.load(tmp_path / "run" / "scores.npz")["final_test"]
    assert np.allclose(saved.scores(raw_test[:, None]), stored, rtol=1e-5, atol=1e-5)
    assert np.allclose(saved.scores(raw_test.reshape(len(raw_test), -1)), stored, rtol=1e-5, atol=1e-5)


def test_paper_config_loads_and_takes_mnist_at_32_px(tmp_path):
    """bench/configs/mnist_paper.yaml (the reproduce command's paper budget) loads, has the paper's
    settings, and passes the run's checks on MNIST-shaped data (images enlarged to the resnet's 32)."""
    from pathlib import Path

    from omasgan.config import OMASGANConfig
    from omasgan.run import validate_run

    _write_stroke_mnist(tmp_path)
    config = OMASGANConfig.load(REPO / "bench/configs/mnist_paper.yaml")
    assert (config.data.dataset, config.data.max_train, config.data.image_size) == ("mnist", None, 32)
    net = config.network
    assert (net.kind, net.g_width, net.d_width, net.latent_dim, net.g_spectral_norm, net.init) == \
        ("resnet", 256, 256, 128, True, "n02")
    assert (config.divergence.name, config.divergence.klwgan_tau) == ("klwgan", 5.0)
    assert {config.task1.epochs, config.task2.epochs, config.task3.epochs, config.j.epochs} == {500}
    assert (config.task1.batch_size, config.task1.d_steps, config.task1.beta1, config.task1.lr_g) == (64, 4, 0.0, 2e-4)
    assert (config.task2.bank_size, config.task2.batch_size, config.task2.mu, config.task2.nu) == (1024, 256, 0.2, 0.3)
    t3 = config.task3
    assert (t3.alpha + t3.delta, t3.beta, t3.gamma, config.j.zeta, config.seed) == (pytest.approx(0.7), 1.0, 0.7, 0.5, 2)
    validate_run(config.with_overrides({"data.data_root": str(tmp_path)}))
