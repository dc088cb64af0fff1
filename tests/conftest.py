from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from xtune.features import Bars, load_bars
from xtune.features.sample import synthetic_bars


@pytest.fixture(autouse=True)
def _isolated_cache(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Tests never read or write the user's ~/.cache/xtune: not in this process (the default),
    nor in the commands they start (the environment)."""
    cache = str(tmp_path_factory.mktemp("cache"))
    monkeypatch.setattr("xtune.settings.DEFAULT_CACHE_DIR", Path(cache))
    monkeypatch.setenv("XTUNE_CACHE_DIR", cache)


@pytest.fixture
def frame() -> pd.DataFrame:
    """1,500 seeded synthetic hourly bars as a plain DataFrame (a fresh copy per test)."""
    return synthetic_bars(1500, seed=3)


@pytest.fixture
def bars(frame: pd.DataFrame) -> Bars:
    return load_bars(frame, name="synthetic")


@pytest.fixture(scope="session")
def eurusd() -> Bars:
    """Real EURUSD hourly bars shipped by the `backtesting` package."""
    pytest.importorskip("backtesting")
    return load_bars("sample:eurusd")


@pytest.fixture
def csv_file(tmp_path: Path, frame: pd.DataFrame) -> Path:
    path = tmp_path / "bars.csv"
    frame.rename_axis("timestamp").to_csv(path)
    return path


# Fixtures that train models (searches, exports): a test that uses one, directly or through
# another fixture, trains too.
TRAINING_FIXTURES = frozenset({"exports", "random_walk_exports", "distilled"})
# Fixtures that start a server process and wait for it to answer (seconds before the first test).
SERVER_FIXTURES = frozenset({"proxy"})


# What hostile users and feeds tried, round by round: `pytest -m hostile` runs all of it.
HOSTILE_FILES = frozenset({"test_bars_hostile.py", "test_config_hostile.py", "test_bundle_safety.py",
                           "test_stopping.py", "test_secrets.py", "test_errors.py"})  # fmt: skip


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """A test that uses a training or server fixture is marked ``slow``, so ``-m "not slow"``
    stays the quick loop; tests in tests/hostile/ and the hostile files of earlier rounds are
    marked ``hostile``; tests marked ``gpu`` are skipped where torch sees no CUDA GPU."""
    for item in items:
        if (TRAINING_FIXTURES | SERVER_FIXTURES) & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)
        path = Path(str(item.fspath))
        if path.parent.name == "hostile" or path.name in HOSTILE_FILES:
            item.add_marker(pytest.mark.hostile)
    gpu_tests = [item for item in items if item.get_closest_marker("gpu")]
    if not gpu_tests:
        return
    import torch

    if not torch.cuda.is_available():
        skip = pytest.mark.skip(reason="needs a CUDA GPU")
        for item in gpu_tests:
            item.add_marker(skip)


_running: dict[str, pytest.Item] = {}


@pytest.hookimpl(wrapper=True)
def pytest_runtest_setup(item: pytest.Item) -> Iterator[None]:
    _running["item"] = item  # fixtures set up now belong to this test
    return (yield)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Iterator[None]:
    _running["item"] = item
    return (yield)


@pytest.fixture(scope="session", autouse=True)
def _one_torch_thread() -> Iterator[None]:
    """torch's own operations in this process (forward passes, exports, scoring) on one thread.
    Training sets its threads per trial and is not affected. The tiny models of the tests gain
    nothing from a second thread, and on a busy 2-core machine two spinning OpenMP threads made
    the model tests five times slower."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session", autouse=True)
def _training_is_slow() -> Iterator[None]:
    """A test that trains a model in this process without the ``slow`` mark fails, naming the
    fix: the quick loop (``-m "not slow"``) must not train."""
    import xtune.models._train as train

    plain = train._train_epoch

    def guarded(run: object, epoch: int) -> tuple[float, str]:
        item = _running.get("item")
        if item is not None and item.get_closest_marker("slow") is None:
            pytest.fail(f"{item.nodeid} trains a model: mark it @pytest.mark.slow, or use a "
                        f"fixture named in tests/conftest.py TRAINING_FIXTURES", pytrace=False)  # fmt: skip
        return plain(run, epoch)  # type: ignore[arg-type]

    train._train_epoch = guarded  # type: ignore[assignment]
    yield
    train._train_epoch = plain
