"""The storage proxy's trial cache: reads coalesced yet fresh, and no database call under its
lock (on the real server at TEST_DB_URL, blocked with a real table lock)."""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Iterator

import optuna
import pytest
import sqlalchemy as sa
from optuna.distributions import FloatDistribution

from xtune.search.proxy_cache import ProxyCache
from xtune.search.proxy_create import Batched
from xtune.search.proxy_read import TrialReader


def test_coalesced_reads_are_fewer_than_callers_and_each_caller_sees_its_write() -> None:
    """Each caller writes, then asks for a read: the read that serves it started after it
    asked, so it sees its write, however many callers share that read."""
    database, cache, guard = [0], [0], threading.Lock()
    stale: list[tuple[int, int]] = []

    def read(callers: int) -> list[None]:
        with guard:
            seen = database[0]  # the read's snapshot, taken at its start
        time.sleep(0.02)
        cache[0] = max(cache[0], seen)
        return [None] * callers

    reads: Batched[None] = Batched(read, limit=sys.maxsize)

    def caller() -> None:
        for _ in range(5):
            with guard:
                database[0] += 1
                mine = database[0]
            reads.call()
            if cache[0] < mine:
                stale.append((mine, cache[0]))

    callers = [threading.Thread(target=caller) for _ in range(16)]
    for t in callers:
        t.start()
    for t in callers:
        t.join()
    assert stale == []
    assert reads.batches < 16 * 5 / 2  # shared, not one read per call


@pytest.mark.postgres
def test_a_write_is_not_held_up_by_a_read_under_way(cache: tuple[ProxyCache, int, str]) -> None:
    """A read of the study that waits on the database (here on a table lock) holds no lock of
    the cache's: a parameter is stored meanwhile, and the readers that came during the read
    share one more read."""
    proxy, study_id, url = cache
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    trial_id = proxy.create_new_trial(study_id)
    proxy.get_all_trials(study_id)
    before = proxy.reads(study_id)
    blocker = engine.connect()
    blocker.execute(sa.text("LOCK TABLE trial_user_attributes IN ACCESS EXCLUSIVE MODE"))
    readers = [threading.Thread(target=proxy.get_all_trials, args=(study_id,)) for _ in range(8)]
    try:
        for t in readers:
            t.start()
        time.sleep(1.0)  # the first reader is inside the database, blocked; the rest wait
        stored = threading.Thread(
            target=proxy.set_trial_param, args=(trial_id, "x", 0.5, FloatDistribution(0, 1))
        )
        stored.start()
        stored.join(timeout=20)
        assert not stored.is_alive(), "the write waited for the read"
        assert all(t.is_alive() for t in readers)  # still blocked: the write did not wait
    finally:
        blocker.rollback()  # releases the table lock
        blocker.close()
        for t in readers:
            t.join(timeout=60)
        engine.dispose()
    assert proxy.reads(study_id) - before <= 2  # the blocked read, and one for those behind it
    (trial,) = proxy.get_all_trials(study_id)
    assert trial.params == {"x": 0.5}


@pytest.mark.postgres
def test_the_cache_follows_trials_to_their_end(cache: tuple[ProxyCache, int, str]) -> None:
    """Finished trials are kept; unfinished ones are read again; a trial finished by another
    storage (a worker on direct PostgreSQL) is seen finished."""
    proxy, study_id, url = cache
    first, second = proxy.create_new_trial(study_id), proxy.create_new_trial(study_id)
    assert [t.state.name for t in proxy.get_all_trials(study_id)] == ["RUNNING", "RUNNING"]
    other = optuna.storages.RDBStorage(url)
    other.set_trial_state_values(second, optuna.trial.TrialState.COMPLETE, [1.0])
    proxy.set_trial_state_values(first, optuna.trial.TrialState.FAIL)
    states = [t.state.name for t in proxy.get_all_trials(study_id)]
    assert states == ["FAIL", "COMPLETE"]
    other.engine.dispose()


@pytest.fixture
def not_utc() -> Iterator[None]:
    """This process's local time zone set to one that is not UTC, for the test."""
    before = os.environ.get("TZ")
    os.environ["TZ"] = "Asia/Kolkata"
    time.tzset()
    yield
    if before is None:
        del os.environ["TZ"]
    else:
        os.environ["TZ"] = before
    time.tzset()


@pytest.mark.postgres
def test_the_proxys_read_builds_the_trials_optuna_builds(
    cache: tuple[ProxyCache, int, str], not_utc: None
) -> None:
    """Trial by trial equal to Optuna's own read: states, values (infinite too), parameters of
    each distribution, attributes, intermediate values, times (in a zone that is not UTC);
    all, and a partial read."""
    proxy, study_id, url = cache
    optuna_read = optuna.storages.RDBStorage(url)
    study = optuna.load_study(study_name=proxy.get_study_name_from_id(study_id), storage=url)
    for k in range(4):
        trial = study.ask()
        trial.suggest_float("lr", 1e-4, 1e-1, log=True)
        trial.suggest_int("width", 8, 64, step=8)
        trial.suggest_categorical("family", ["lstm", "xlstm", None])
        trial.set_user_attr("plan", {"units": ["a", "b"], "k": k})
        study._storage.set_trial_system_attr(trial._trial_id, "xtune:heartbeat", 1.5 * k)
        trial.report(float("inf") if k else -float("inf"), step=0)
        trial.report(0.25 * k, step=3)
        if k == 0:
            study.tell(trial, float("inf"))
        elif k == 1:
            study.tell(trial, state=optuna.trial.TrialState.FAIL)
        elif k == 2:
            study.tell(trial, -2.5)
    reader = TrialReader()
    engine = optuna_read.engine
    expected = optuna_read.get_all_trials(study_id)
    assert reader.read(engine, study_id, set(), -1) == expected
    assert [t.values for t in expected] == [[float("inf")], None, [-2.5], None]
    assert reader.read(engine, study_id, {expected[3]._trial_id}, expected[1]._trial_id) == [
        expected[2],
        expected[3],
    ]
    with pytest.raises(KeyError):
        reader.read(engine, study_id + 10**6, set(), -1)
    optuna_read.engine.dispose()


@pytest.mark.postgres
def test_a_write_is_not_held_up_by_another_write_under_way(
    cache: tuple[ProxyCache, int, str],
) -> None:
    """Two workers' parameters: one waits on the database (its trial's row locked), the other
    is stored meanwhile."""
    proxy, study_id, url = cache
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    waiting, free = proxy.create_new_trial(study_id), proxy.create_new_trial(study_id)
    distribution = FloatDistribution(0, 1)
    blocker = engine.connect()
    blocker.execute(sa.text(f"SELECT 1 FROM trials WHERE trial_id = {waiting} FOR UPDATE"))
    held = threading.Thread(target=proxy.set_trial_param, args=(waiting, "x", 0.1, distribution))
    try:
        held.start()
        time.sleep(1.0)  # its insert waits for the row (the foreign key's lock)
        stored = threading.Thread(target=proxy.set_trial_param, args=(free, "x", 0.2, distribution))
        stored.start()
        stored.join(timeout=20)
        assert not stored.is_alive(), "the write waited for the other write"
        assert held.is_alive()
    finally:
        blocker.rollback()
        blocker.close()
        held.join(timeout=60)
        engine.dispose()
    assert [t.params for t in proxy.get_all_trials(study_id)] == [{"x": 0.1}, {"x": 0.2}]
