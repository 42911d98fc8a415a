"""How a config field is declared: its default beside the values it admits, and the one validator.

A section field reads ``name: type = setting(default, rule)``; the rule is a :class:`Range` (numbers)
or a :class:`OneOf` (names).  The fields every training section shares (epochs, batch size, learning
rates, Adam's betas, critic steps) have their own factories (:func:`epochs_field`, ...), so their
bounds are written once and a section states only its defaults::

    @dataclass
    class Task2Config(Section):
        SECTION: ClassVar[str] = "task2"
        epochs: int = epochs_field(20)              # >= 1, the section's default
        mu: float = setting(0.2, at_least(0.0))     # a field of its own, its bound beside it
        lr_b: float = learning_rate_field()         # > 0, default 2e-4

:func:`check_fields` checks a built section field by field, in declaration order, and raises one
:class:`~omasgan.errors.ConfigError` line ``<section>.<field>=<value!r> <complaint>`` for the first
value a rule refuses.  Rules that tie several fields together are the section's own checks.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

from .errors import ConfigError

RULE = "rule"
"""The ``metadata`` key of a dataclass field that holds its :class:`Range` or :class:`OneOf`."""


def out_of_range(rule: str) -> str:
    """The usual complaint about a number: ``is out of range; it must <rule>``."""
    return f"is out of range; it must {rule}"


@dataclass(frozen=True)
class Range:
    """The numbers a field admits, and what the error line says about one it refuses.

    A value is refused when it is not an int (a bool is not one) and ``integer`` is set; when
    ``finite`` is set and it is nan or infinite; when it is below ``low`` (or equal to it, with
    ``low_open``); when it is above ``high`` (or equal, with ``high_open``).  None is admitted only
    when ``nullable``.  ``complaint`` follows ``key=value`` in the error line.
    """

    complaint: str
    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    finite: bool = False
    integer: bool = False
    nullable: bool = False

    def refuses(self, value: Any) -> bool:
        if value is None and self.nullable:
            return False
        if self.integer and (isinstance(value, bool) or not isinstance(value, int)):
            return True
        if self.finite and not math.isfinite(value):
            return True
        if self.low is not None and (value <= self.low if self.low_open else value < self.low):
            return True
        return self.high is not None and (value >= self.high if self.high_open else value > self.high)


@dataclass(frozen=True)
class OneOf:
    """The names a field admits."""

    names: tuple[str, ...]

    def refuses(self, value: Any) -> bool:
        return value not in self.names

    @property
    def complaint(self) -> str:
        return f"is not allowed; choose one of: {', '.join(self.names)}"


Rule = Range | OneOf


def at_least(low: float, *, strict: bool = False) -> Range:
    """Finite numbers >= ``low`` (> ``low`` when ``strict``); the line names ``low`` as written (1, 0.0)."""
    return Range(out_of_range(f"be a finite number {'>' if strict else '>='} {low}"), low=low, low_open=strict,
                 finite=True)


def between(low: float, high: float, *, low_open: bool = False, high_open: bool = False, note: str = "") -> Range:
    """Finite numbers in an interval, named as ``[low, high]`` with ``(`` or ``)`` at an open end."""
    interval = f"{'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"
    return Range(out_of_range(f"lie in {interval}{note}"), low=low, high=high, low_open=low_open,
                 high_open=high_open, finite=True)


def setting(default: Any, rule: Rule | None = None) -> Any:
    """A section field: its default and the rule its values obey (none: any value of its type)."""
    return field(default=default, metadata={RULE: rule} if rule is not None else {})


# ---- the fields the training sections share ------------------------------------------------------

ADAM_BETA = between(0.0, 1.0, high_open=True)


def epochs_field(default: int) -> Any:
    """Passes over the training data: >= 1."""
    return setting(default, at_least(1))


def batch_size_field(default: int) -> Any:
    """Samples per step: >= 2."""
    return setting(default, at_least(2))


def learning_rate_field(default: float = 2e-4) -> Any:
    """An Adam learning rate: > 0."""
    return setting(default, at_least(0.0, strict=True))


def beta1_field(default: float = 0.5) -> Any:
    """Adam's beta1, in [0, 1)."""
    return setting(default, ADAM_BETA)


def beta2_field(default: float = 0.999) -> Any:
    """Adam's beta2, in [0, 1)."""
    return setting(default, ADAM_BETA)


def d_steps_field(default: int = 1, *, low: int = 1) -> Any:
    """Critic steps per generator (or boundary) step: >= ``low``."""
    return setting(default, at_least(low))


# ---- the validator ---------------------------------------------------------------------------------

def check_value(where: str, value: Any, rule: Rule) -> None:
    """Raise ``ConfigError("<where>=<value!r> <complaint>")`` when ``rule`` refuses ``value``."""
    if rule.refuses(value):
        raise ConfigError(f"{where}={value!r} {rule.complaint}")


def check_fields(instance: Any, prefix: str) -> None:
    """Check every field of dataclass ``instance`` that declares a rule, in declaration order; the
    error line names the field as ``<prefix><name>``."""
    for item in dataclasses.fields(instance):
        rule = item.metadata.get(RULE)
        if rule is not None:
            check_value(f"{prefix}{item.name}", getattr(instance, item.name), rule)
