"""Generators and discriminators for OMASGAN (docs/design.md section 3.7).

Three families, chosen by name:

- ``mlp``: fully connected nets for synthetic 2-D and tabular data, any sample shape
  (:mod:`omasgan.networks.mlp`);
- ``dcgan``: DCGAN conv nets for (C, 28, 28) and (C, 32, 32) images, C in {1, 3}
  (:mod:`omasgan.networks.dcgan`);
- ``resnet``: the SN-ResNet for (C, 32, 32) images, C in {1, 3} (:mod:`omasgan.networks.resnet`).

Every generator maps z of shape (B, latent_dim) to samples of shape (B, *sample_shape); every
discriminator maps (B, *sample_shape) to raw scalar logits of shape exactly (B,) (no sigmoid).
Every discriminator also has ``features(x)``: its penultimate layer, flattened to (B, F) (Task 2's
``feature_space = critic`` measures d and s there).
Generators carry ``kind``, ``sample_shape`` and ``latent_dim`` attributes, discriminators ``kind`` and
``sample_shape``. Which arguments apply to which family:

========  ===========  ============  ====================================  ==============================
kind      ``width``    ``depth``     ``batchnorm``                         ``spectral_norm`` (D only)
========  ===========  ============  ====================================  ==============================
mlp       hidden units hidden layers G: honoured; D: ignored (never BN)    honoured
dcgan     base chans   ignored       G: honoured; D: honoured unless SN    honoured (D then has no BN)
resnet    channels     ignored       G: honoured; D: ignored (never BN)    ignored: always on
========  ===========  ============  ====================================  ==============================

Ignored arguments are still validated, so a bad configuration fails the same way for every kind.
Two arguments are for ``resnet`` only (any other kind refuses a non-default value): the generator's
``spectral_norm`` and ``init`` (``default`` or ``n02``, :mod:`omasgan.networks.resnet`).
Arguments are checked when a network is built and a bad one raises :class:`~omasgan.errors.ConfigError`
with one line naming the value and what is allowed.
"""

from __future__ import annotations

import operator
from collections.abc import Iterable

from torch import nn

from ..errors import ConfigError
from ..vocabulary import NETWORK_KINDS
from ._layers import OUTPUTS
from .dcgan import DCGANDiscriminator, DCGANGenerator
from .mlp import MLPDiscriminator, MLPGenerator
from .resnet import INITS, ResNetDiscriminator, ResNetGenerator

NETWORKS = NETWORK_KINDS  # the name this package has always exported

__all__ = [
    "NETWORKS",
    "OUTPUTS",
    "check_network_shape",
    "build_generator",
    "build_discriminator",
    "MLPGenerator",
    "MLPDiscriminator",
    "DCGANGenerator",
    "DCGANDiscriminator",
    "ResNetGenerator",
    "ResNetDiscriminator",
]

_SHAPE_RULES = {
    "mlp": "takes a non-empty shape of positive integers",
    "dcgan": "takes images of shape (C, 28, 28) or (C, 32, 32) with C in {1, 3}",
    "resnet": "takes images of shape (C, 32, 32) with C in {1, 3}",
}


def _check_kind(kind: object) -> str:
    if not isinstance(kind, str) or kind not in NETWORKS:
        raise ConfigError(f"unknown network {kind!r}; choose one of: {', '.join(NETWORKS)}")
    return kind


def _as_shape(sample_shape: object) -> tuple[int, ...] | None:
    """``sample_shape`` as a tuple of Python ints, or None when it is not a sequence of integers."""
    if isinstance(sample_shape, (str, bytes)) or not isinstance(sample_shape, Iterable):
        return None
    try:
        dims = tuple(sample_shape)
        if any(isinstance(d, bool) for d in dims):
            return None
        return tuple(operator.index(d) for d in dims)
    except TypeError:
        return None


def _shape_text(sample_shape: object) -> str:
    shape = _as_shape(sample_shape)
    if shape is not None:
        return repr(shape)
    if isinstance(sample_shape, (list, tuple)):
        return repr(tuple(sample_shape))
    return repr(sample_shape)


def _normalise_shape(kind: str, sample_shape: object) -> tuple[int, ...]:
    shape = _as_shape(sample_shape)
    ok = shape is not None and len(shape) > 0 and all(d >= 1 for d in shape)
    if ok and kind == "dcgan":
        ok = len(shape) == 3 and shape[0] in (1, 3) and shape[1] == shape[2] and shape[1] in (28, 32)
    elif ok and kind == "resnet":
        ok = len(shape) == 3 and shape[0] in (1, 3) and shape[1:] == (32, 32)
    if not ok:
        raise ConfigError(f"network {kind!r} {_SHAPE_RULES[kind]}; got {_shape_text(sample_shape)}")
    return shape


def check_network_shape(kind: str, sample_shape: tuple[int, ...]) -> None:
    """Raise :class:`ConfigError` unless network ``kind`` can model samples of ``sample_shape``.

    ``mlp`` takes any non-empty shape of positive integers; ``dcgan`` takes (C, 28, 28) and
    (C, 32, 32); ``resnet`` takes (C, 32, 32); C in {1, 3} for both image families.
    """
    _normalise_shape(_check_kind(kind), sample_shape)


def _check_int(name: str, value: object, minimum: int = 1) -> int:
    if not isinstance(value, bool):
        try:
            number = operator.index(value)
        except TypeError:
            number = None
        if number is not None and number >= minimum:
            return number
    raise ConfigError(f"{name} must be an integer >= {minimum}; got {value!r}")


def _check_flag(name: str, value: object) -> bool:
    if isinstance(value, bool) or type(value).__name__ == "bool_":  # numpy booleans too
        return bool(value)
    raise ConfigError(f"{name} must be true or false; got {value!r}")


def _check_resnet_only(kind: str, spectral_norm: bool, init: object) -> str:
    """Validate ``init`` and refuse the resnet-only arguments for the other kinds."""
    if not isinstance(init, str) or init not in INITS:
        raise ConfigError(f"init must be one of: {', '.join(INITS)}; got {init!r}")
    if kind != "resnet" and (spectral_norm or init != "default"):
        what = "a spectrally normalised generator" if spectral_norm else f"init {init!r}"
        raise ConfigError(f"network {kind!r} has no option for {what}; only 'resnet' has")
    return init


def build_generator(kind: str, sample_shape: tuple[int, ...], latent_dim: int, *, width: int = 64,
                    depth: int = 3, output: str = "tanh", batchnorm: bool = True, spectral_norm: bool = False,
                    init: str = "default") -> nn.Module:
    """Build a generator z (B, latent_dim) -> (B, *sample_shape).

    ``output`` is the final activation: ``"tanh"`` for images scaled to [-1, 1], ``"linear"`` for raw
    2-D / tabular data. ``width``/``depth``/``batchnorm`` apply as in the module docstring's table;
    ``spectral_norm`` and ``init`` are for ``resnet`` only.
    """
    kind = _check_kind(kind)
    shape = _normalise_shape(kind, sample_shape)
    latent_dim = _check_int("latent_dim", latent_dim)
    width = _check_int("width", width)
    depth = _check_int("depth", depth)
    if not isinstance(output, str) or output not in OUTPUTS:
        raise ConfigError(f"output must be one of: {', '.join(OUTPUTS)}; got {output!r}")
    batchnorm = _check_flag("batchnorm", batchnorm)
    spectral_norm = _check_flag("spectral_norm", spectral_norm)
    init = _check_resnet_only(kind, spectral_norm, init)
    if kind == "mlp":
        return MLPGenerator(shape, latent_dim, width=width, depth=depth, output=output, batchnorm=batchnorm)
    if kind == "dcgan":
        return DCGANGenerator(shape, latent_dim, width=width, output=output, batchnorm=batchnorm)
    return ResNetGenerator(shape, latent_dim, width=width, output=output, batchnorm=batchnorm,
                           spectral_norm=spectral_norm, init=init)


def build_discriminator(kind: str, sample_shape: tuple[int, ...], *, width: int = 64, depth: int = 3,
                        spectral_norm: bool = False, batchnorm: bool = True, init: str = "default") -> nn.Module:
    """Build a discriminator (B, *sample_shape) -> raw logits (B,).

    ``spectral_norm=True`` wraps every linear/conv layer with
    :func:`torch.nn.utils.parametrizations.spectral_norm` (the ``resnet`` discriminator always has it).
    ``width``/``depth``/``batchnorm`` apply as in the module docstring's table.
    """
    kind = _check_kind(kind)
    shape = _normalise_shape(kind, sample_shape)
    width = _check_int("width", width)
    depth = _check_int("depth", depth)
    spectral_norm = _check_flag("spectral_norm", spectral_norm)
    batchnorm = _check_flag("batchnorm", batchnorm)
    init = _check_resnet_only(kind, False, init)
    if kind == "mlp":
        return MLPDiscriminator(shape, width=width, depth=depth, spectral_norm=spectral_norm)
    if kind == "dcgan":
        return DCGANDiscriminator(shape, width=width, spectral_norm=spectral_norm, batchnorm=batchnorm)
    return ResNetDiscriminator(shape, width=width, init=init)
