"""A new model family is one ``Family`` value: a tiny GRU, defined and registered here only,
is searched, exported as an ONNX bundle and predicted with, through the real entry points."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pytest
import torch
from torch import nn

from tests.search_tests.studies import write_study
from xtune.export import export_bundle, pick_trial
from xtune.features import load_bars
from xtune.models.families import Draws, Family, register_family
from xtune.models.heads import HeadConfig, Heads
from xtune.models.ranges import IntRange, Space
from xtune.runtime import load_bundle, predict
from xtune.search import StudyError, load_study_config, read, resolve_storage, run_search
from xtune.settings import Settings


@dataclass(frozen=True)
class GRUConfig:
    n_features: int
    width: int = 8
    layers: int = 1
    dropout: float = 0.0
    head: HeadConfig = field(default_factory=HeadConfig)
    family: Literal["gru"] = "gru"


class GRUModel(nn.Module):
    def __init__(self, config: GRUConfig) -> None:
        super().__init__()
        self.gru = nn.GRU(config.n_features, config.width, config.layers, batch_first=True)
        self.heads = Heads(config.width, config.head, config.dropout)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        y, _ = self.gru(x)  # [B, T, width]
        return self.heads(y[:, -1])  # [B, H, C], [B, H]


@dataclass(frozen=True)
class GRUSpace:
    width: Space = field(default_factory=lambda: IntRange(4, 64, 4))
    width_step: int = 4
    layers: Space = field(default_factory=lambda: IntRange(1, 2))


def _suggest(draw: Draws, s: GRUSpace, n: int, head: HeadConfig, dropout: float) -> GRUConfig:
    width = draw.pick("gru/width", s.width, "width")
    layers = draw.pick("gru/layers", s.layers, "depth")
    return GRUConfig(n, width, layers, dropout, head)


GRU = Family(
    name="gru",
    config=GRUConfig,
    space=GRUSpace,
    rules={
        "width": (True, 1, 4096, "[4, 16]"),
        "width_step": (True, 1, 4096, "4"),
        "layers": (True, 1, 8, "[1, 2]"),
    },
    width="width",
    depth="layers",
    build=GRUModel,
    suggest=_suggest,
    width_depth=lambda m: (m.width, m.layers),
    resize=lambda m, width, depth: replace(m, width=width, layers=depth),
    describe=lambda m: f"GRU {m.width}x{m.layers}",
)


@pytest.fixture
def gru() -> Iterator[Family]:
    with register_family(GRU) as family:
        yield family


def _gru_study(folder: Path, **space: Any) -> Path:
    path = write_study(folder, trials=2, sampler="random", families='["gru"]')
    lines = "".join(f"{k} = {v}\n" for k, v in ({"width": "[4, 64]"} | space).items())
    path.write_text(path.read_text().replace("[train]", f"[model.gru]\n{lines}\n[train]"))
    return path


@pytest.mark.slow
def test_a_registered_family_is_searched_exported_and_predicted(
    gru: Family, tmp_path: Path
) -> None:
    env = Settings()
    config = load_study_config(_gru_study(tmp_path))
    study = run_search(config, resolve_storage(config, None, env), env)
    done = [t for t in study.trials if t.state.name == "COMPLETE"]
    assert len(done) >= 2
    for t in done:
        assert t.params["family"] == "gru"
        assert 4 <= t.params["gru/width"] <= 32  # the study's max_width cuts the space
        model = read(t).plan.params.model  # back from storage as the family's own config
        assert isinstance(model, GRUConfig) and model.width == t.params["gru/width"]
    bundle_dir = tmp_path / "bundle"
    export_bundle(config, pick_trial(study), bundle_dir, env)
    bundle = load_bundle(bundle_dir)
    assert bundle.manifest.model.family == "gru"
    frame = predict(bundle, load_bars(tmp_path / "bars.csv"), last=True)
    probs = frame[[c for c in frame.columns if "_p_" in c]].to_numpy()
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-5)


def test_a_registered_family_space_is_checked_by_its_own_rules(gru: Family, tmp_path: Path) -> None:
    with pytest.raises(StudyError, match=r"\[model.gru\] layers = 9: 9 is outside \[1, 8\]"):
        load_study_config(_gru_study(tmp_path, layers=9))
    with pytest.raises(StudyError, match=r"max_width 32 is below the smallest model.gru.width"):
        load_study_config(_gru_study(tmp_path, width="[40, 64]"))


def test_a_family_is_known_only_while_registered(tmp_path: Path) -> None:
    with pytest.raises(StudyError, match=r"\[model\] unknown key 'gru'"):
        load_study_config(_gru_study(tmp_path))
