"""The model families: per family, one :class:`Family` value says everything the rest of the
code needs to know about it. Its config and model, its ``[model.<name>]`` search space, how a
trial draws a config from that space, its width and depth (what ``[caps] max_width`` and
``max_depth`` bound), and how distillation resizes it.

:data:`FAMILIES` maps each name to its family: the two built-ins, ``lstm`` and ``xlstm``.
:func:`register_family` adds another for the length of a ``with`` block (tests use it to prove
that a new family is one ``Family`` value).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Any, Literal, Protocol

from torch import nn

from xtune.errors import SpecError
from xtune.models.heads import MIN_NORM_WIDTH, HeadConfig
from xtune.models.lstm import LSTMConfig, LSTMModel
from xtune.models.ranges import Choice, IntRange, Space, first_not_multiple, lowest, values
from xtune.models.xlstm import XLSTMConfig, XLSTMModel

Cap = Literal["width", "depth"]
# A study-file key's rule: (whole numbers only, lowest, highest, an example to suggest).
KeyRule = tuple[bool, float, float, str]
SIZE = 65_536  # widest width a study may ask for
BUILT_IN = ("lstm", "xlstm")


class Draws(Protocol):
    """What a family's ``suggest`` draws with (the search gives it a trial and the caps).

    ``pick`` draws ``name`` from ``space`` (a fixed value is not drawn), cut to the cap on the
    family's width or depth if ``cap`` names one; ``flag`` draws a boolean named ``name``.
    """

    def pick(self, name: str, space: Space, cap: Cap | None = None) -> Any: ...
    def flag(self, name: str) -> bool: ...


def _no_problem(space: Any) -> str | None:
    return None


@dataclass(frozen=True)
class Family:
    """One model family.

    Attributes:
        name: the ``family`` value of its configs and of a study's ``family`` parameter.
        config: its config dataclass (``n_features``, ``dropout``, ``head``, ``family``).
        space: its search-space dataclass, the ``[model.<name>]`` table of a study file: a
            :data:`Space` per field, and ``<field>_step`` ints for stepped integer ranges.
        rules: per space key, what a study file may write (see :data:`KeyRule`).
        width: the space field that ``[caps] max_width`` bounds; ``depth``: ``max_depth``.
        build: config -> untrained model.
        suggest: ``(draws, space, n_features, head, dropout) -> config``; parameters are named
            ``<name>/<field>``. The order of its draws is part of every seeded study's history.
        width_depth: config -> (width, depth).
        resize: (config, width, depth) -> the config at that size (raises SpecError if the
            family cannot take it).
        describe: config -> a short name such as ``LSTM 32x2``.
        problem: space -> why no trial could be built from it, or None.
        from_dict: inverse of ``dataclasses.asdict`` on its config.
    """

    name: str
    config: type
    space: type
    rules: Mapping[str, KeyRule]
    width: str
    depth: str
    build: Callable[[Any], nn.Module]
    suggest: Callable[[Draws, Any, int, HeadConfig, float], Any]
    width_depth: Callable[[Any], tuple[int, int]]
    resize: Callable[[Any, int, int], Any]
    describe: Callable[[Any], str]
    problem: Callable[[Any], str | None] = _no_problem
    from_dict: Callable[[dict[str, Any]], Any] | None = None

    def config_from_dict(self, d: dict[str, Any]) -> Any:
        """A config of this family from its ``asdict`` form."""
        if self.from_dict is not None:
            return self.from_dict(d)
        return self.config(**{**d, "head": HeadConfig(**d["head"])})


# ------------------------------------------------------------------------------------ LSTM
@dataclass(frozen=True)
class LSTMSpace:
    hidden: Space = field(default_factory=lambda: IntRange(16, 128, 8))
    hidden_step: int = 8
    layers: Space = field(default_factory=lambda: IntRange(1, 2))


def _suggest_lstm(
    draw: Draws, s: LSTMSpace, n_features: int, head: HeadConfig, dropout: float
) -> LSTMConfig:
    hidden = draw.pick("lstm/hidden", s.hidden, "width")
    layers = draw.pick("lstm/layers", s.layers, "depth")
    return LSTMConfig(
        n_features=n_features, hidden=hidden, layers=layers, dropout=dropout, head=head
    )


LSTM = Family(
    name="lstm",
    config=LSTMConfig,
    space=LSTMSpace,
    rules={
        "hidden": (True, 3, SIZE, "[16, 128]"),  # LayerNormed: MIN_NORM_WIDTH
        "hidden_step": (True, 1, SIZE, "8"),
        "layers": (True, 1, 64, "[1, 2]"),
    },
    width="hidden",
    depth="layers",
    build=LSTMModel,
    suggest=_suggest_lstm,
    width_depth=lambda m: (m.hidden, m.layers),
    resize=lambda m, width, depth: replace(m, hidden=width, layers=depth),
    describe=lambda m: f"LSTM {m.hidden}x{m.layers}",
)


# ----------------------------------------------------------------------------------- xLSTM
@dataclass(frozen=True)
class XLSTMSpace:
    embed: Space = field(default_factory=lambda: IntRange(16, 64, 16))
    embed_step: int = 16
    heads: Space = field(default_factory=lambda: Choice((2, 4)))
    blocks: Space = field(default_factory=lambda: IntRange(1, 3))


def _suggest_xlstm(
    draw: Draws, s: XLSTMSpace, n_features: int, head: HeadConfig, dropout: float
) -> XLSTMConfig:
    blocks = draw.pick("xlstm/blocks", s.blocks, "depth")
    slstm_at = tuple(i for i in range(blocks) if draw.flag(f"xlstm/slstm_{i}"))
    embed = draw.pick("xlstm/embed", s.embed, "width")
    heads = draw.pick("xlstm/heads", s.heads)
    return XLSTMConfig(
        n_features=n_features,
        embed=embed,
        heads=heads,
        blocks=blocks,
        slstm_at=slstm_at,
        dropout=dropout,
        head=head,
    )


def _xlstm_problem(s: XLSTMSpace) -> str | None:
    for h in values(s.heads):  # at most 256 head counts (the rule on heads)
        # sLSTM needs embed % heads == 0; mLSTM needs (2 * embed) % heads == 0 and % 4 == 0
        multiple = math.lcm(h, 2)
        e = first_not_multiple(s.embed, multiple)
        if e is not None:
            return f"embed {e} does not fit heads {h}: every embed must be even and divisible by every head count; write an embed range and embed_step that are multiples of {multiple}."
        if lowest(s.embed) < MIN_NORM_WIDTH * h:  # each sLSTM head is LayerNormed
            return f"embed {lowest(s.embed)} with heads {h} leaves {lowest(s.embed) // h} unit(s) per head, and a head's LayerNorm needs at least {MIN_NORM_WIDTH}; write an embed range that starts at {MIN_NORM_WIDTH * h} or more, or fewer heads."
    return None


def _describe_xlstm(m: XLSTMConfig) -> str:
    kinds = ", ".join("s" if i in m.slstm_at else "m" for i in range(m.blocks))
    return f"xLSTM {m.embed} [{kinds}]"


def _resize_xlstm(m: XLSTMConfig, width: int, depth: int) -> XLSTMConfig:
    """An xLSTM keeps the sLSTM blocks that still exist."""
    kept = tuple(i for i in m.slstm_at if i < depth)
    return replace(m, embed=width, blocks=depth, slstm_at=kept)


XLSTM = Family(
    name="xlstm",
    config=XLSTMConfig,
    space=XLSTMSpace,
    rules={
        "embed": (True, 4, SIZE, "[16, 64]"),  # even, and MIN_NORM_WIDTH per head (1 head: 4)
        "embed_step": (True, 1, SIZE, "16"),
        "heads": (True, 1, 256, "{choices = [2, 4]}"),
        "blocks": (True, 1, 64, "[1, 3]"),
    },
    width="embed",
    depth="blocks",
    build=XLSTMModel,
    suggest=_suggest_xlstm,
    width_depth=lambda m: (m.embed, m.blocks),
    resize=_resize_xlstm,
    describe=_describe_xlstm,
    problem=_xlstm_problem,
    from_dict=lambda d: XLSTMConfig(
        **{**d, "head": HeadConfig(**d["head"]), "slstm_at": tuple(d["slstm_at"])}
    ),
)


# -------------------------------------------------------------------------------- registry
_families: dict[str, Family] = {f.name: f for f in (LSTM, XLSTM)}
FAMILIES: Mapping[str, Family] = MappingProxyType(_families)


def family_of(config: Any) -> Family:
    """The family of a model config (by its ``family`` field)."""
    try:
        return FAMILIES[config.family]
    except KeyError:
        raise SpecError(
            f"unknown model family {config.family!r}; known: {', '.join(FAMILIES)}."
        ) from None


@contextmanager
def register_family(family: Family) -> Iterator[Family]:
    """``family`` in :data:`FAMILIES` for the length of the ``with`` block (for tests)."""
    if family.name in _families:
        raise SpecError(f"a model family named {family.name!r} exists already.")
    _families[family.name] = family
    try:
        yield family
    finally:
        del _families[family.name]
