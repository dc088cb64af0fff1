from __future__ import annotations

import numpy as np
import pytest

from xtune.errors import SpecError
from xtune.features import LabelSpec, directions, forward_returns
from xtune.features.labels import MISSING


def test_forward_returns_and_directions_by_hand() -> None:
    close = np.array([100.0, 101.0, 101.0, 99.0, 100.0])
    ret = forward_returns(close, (1, 2))
    np.testing.assert_allclose(
        ret[:, 0], [np.log(1.01), 0.0, np.log(99 / 101), np.log(100 / 99), np.nan]
    )
    np.testing.assert_allclose(
        ret[:, 1], [np.log(1.01), np.log(99 / 101), np.log(100 / 101), np.nan, np.nan]
    )
    two = directions(ret, LabelSpec(horizons=(1, 2)))
    # unchanged close counts as "not up" (class 0); rows without a future are MISSING
    np.testing.assert_array_equal(two[:, 0], [1, 0, 0, 1, MISSING])
    np.testing.assert_array_equal(two[:, 1], [1, 0, 0, MISSING, MISSING])


def test_three_classes_with_a_dead_zone() -> None:
    ret = np.array([[0.002], [0.0005], [-0.0005], [-0.003], [np.nan]])
    out = directions(ret, LabelSpec(dead_zone=0.001, classes=3))
    np.testing.assert_array_equal(out[:, 0], [2, 1, 1, 0, MISSING])
    assert LabelSpec(dead_zone=0.001, classes=3).class_names == ("down", "flat", "up")


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"horizons": ()}, "positive integers"),
        ({"horizons": (0,)}, "positive integers"),
        ({"horizons": (2, 2)}, "duplicates"),
        ({"classes": 4}, "2 or 3"),
        ({"classes": 3}, "dead_zone > 0"),
        ({"dead_zone": 0.01}, "only applies to 3 classes"),
    ],
)
def test_bad_label_specs(kwargs: dict[str, object], match: str) -> None:
    with pytest.raises(SpecError, match=match):
        LabelSpec(**kwargs)  # type: ignore[arg-type]
