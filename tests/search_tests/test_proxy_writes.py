"""The storage proxy's writes: new trials created in batches and numbered as Optuna numbers
them, parameters and attributes written by one statement with Optuna's outcomes, and a pool
that checks only the connections that sat idle (on the real server at TEST_DB_URL)."""

from __future__ import annotations

import threading
import time

import optuna
import pytest
import sqlalchemy as sa
from optuna.distributions import FloatDistribution, IntDistribution
from optuna.trial import TrialState

from xtune.search.proxy_cache import ProxyCache
from xtune.search.proxy_create import Batched
from xtune.search.proxy_server import ping_when_idle
from xtune.search.storage import open_database
from xtune.settings import Settings


def test_batched_calls_get_one_result_each_and_share_batches() -> None:
    """Callers that arrive while a batch is under way are served together by the next."""
    made = iter(range(10**6))

    def make(n: int) -> list[int]:
        time.sleep(0.02)
        return [next(made) for _ in range(n)]

    batched: Batched[int] = Batched(make)
    results: list[int] = []

    def caller() -> None:
        for _ in range(4):
            results.append(batched.call())

    callers = [threading.Thread(target=caller) for _ in range(16)]
    for t in callers:
        t.start()
    for t in callers:
        t.join()
    assert sorted(results) == list(range(64))  # each result to one caller
    assert batched.batches < 64 / 2


def test_a_failed_batch_raises_in_each_of_its_callers() -> None:
    """The first caller's batch fails; the four that came meanwhile share the next batch,
    which fails too; once the database is back the same batcher serves again."""
    entered, errors, away = threading.Event(), [], [True]

    def make(n: int) -> list[int]:
        entered.set()
        time.sleep(0.1)
        if away[0]:
            raise ConnectionError("database away")
        return list(range(n))

    batched: Batched[int] = Batched(make)

    def caller() -> None:
        try:
            batched.call()
        except ConnectionError as exc:
            errors.append(exc)

    first = threading.Thread(target=caller)
    first.start()
    entered.wait()
    waiting = [threading.Thread(target=caller) for _ in range(4)]
    for t in waiting:
        t.start()
    for t in [first, *waiting]:
        t.join()
    assert len(errors) == 5
    assert batched.batches == 2
    away[0] = False
    assert batched.call() == 0
    assert batched.batches == 3


@pytest.mark.postgres
def test_trials_created_at_once_are_batched_and_numbered_as_optuna_numbers_them(
    cache: tuple[ProxyCache, int, str],
) -> None:
    """32 workers' trials created at once, while another client enqueues trials directly:
    fewer transactions than trials, and every trial numbered by its id, 0..n-1 without a gap
    or a repeat, in the cache as in the database."""
    proxy, study_id, url = cache
    direct = optuna.storages.RDBStorage(url)
    name = proxy.get_study_name_from_id(study_id)
    enqueuer = optuna.load_study(study_name=name, storage=direct)
    ids: list[int] = []
    start = threading.Barrier(33)

    def worker() -> None:
        start.wait()
        ids.append(proxy.create_new_trial(study_id))

    def enqueue() -> None:
        start.wait()
        for k in range(4):
            enqueuer.enqueue_trial({"x": k / 4})

    threads = [threading.Thread(target=worker) for _ in range(32)]
    threads.append(threading.Thread(target=enqueue))
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    stored = direct.get_all_trials(study_id)
    assert len(ids) == 32 and len(stored) == 36
    assert [t.number for t in sorted(stored, key=lambda t: t._trial_id)] == list(range(36))
    assert {t._trial_id for t in stored if t.state.name == "RUNNING"} == set(ids)
    assert 1 <= proxy.batches(study_id) < 32
    cached = {t._trial_id: t.number for t in proxy.get_all_trials(study_id)}
    assert cached == {t._trial_id: t.number for t in stored}
    direct.engine.dispose()


def _outcome(storage: optuna.storages.BaseStorage, method: str, *args: object) -> str:
    """What ``storage.method(*args)`` did: stored, or the error it raised."""
    try:
        getattr(storage, method)(*args)
    except (KeyError, ValueError, optuna.exceptions.UpdateFinishedTrialError) as exc:
        return f"{type(exc).__name__}: {exc}"
    return "stored"


@pytest.mark.postgres
def test_the_proxys_writes_do_what_optunas_do(cache: tuple[ProxyCache, int, str]) -> None:
    """Each write, by the proxy's statements and by Optuna's storage on a twin trial (running,
    waiting, then finished): the same outcome (stored, or the same error) and the same trial
    read back."""
    proxy, study_id, url = cache
    optuna_write = optuna.storages.RDBStorage(url)
    wide = FloatDistribution(0, 1)
    first = proxy.create_new_trial(study_id)
    for name in ("x", "y"):  # the study's first draws: checked by Optuna's own write
        proxy.set_trial_param(first, name, 0.5, wide)
    waiting = optuna.trial.create_trial(state=TrialState.WAITING)
    pairs = [
        (proxy.create_new_trial(study_id), proxy.create_new_trial(study_id)),
        (proxy.create_new_trial(study_id, waiting), proxy.create_new_trial(study_id, waiting)),
    ]
    steps: list[tuple[str, tuple[object, ...]]] = [
        ("set_trial_user_attr", ("plan", {"units": ["a"], "k": 1})),
        ("set_trial_user_attr", ("plan", {"units": ["b"], "k": 2})),  # replaced
        ("set_trial_system_attr", ("xtune:heartbeat", 1.5)),
        ("set_trial_param", ("x", 0.25, wide)),
        ("set_trial_param", ("y", 0.75, FloatDistribution(0, 2))),  # another range: allowed
        ("set_trial_param", ("y", 0.5, wide)),  # a duplicate: left as it was
        ("set_trial_param", ("x", 0.1, IntDistribution(0, 3))),  # incompatible: ValueError
    ]
    for ours, theirs in pairs:
        for method, args in steps:
            mine = _outcome(proxy, method, ours, *args)
            assert mine == _outcome(optuna_write, method, theirs, *args), (method, args)
        mine_read, theirs_read = optuna_write.get_trial(ours), optuna_write.get_trial(theirs)
        assert mine_read.params == theirs_read.params == {"x": 0.25, "y": 0.75}
        assert mine_read.distributions == theirs_read.distributions
        assert mine_read.user_attrs == theirs_read.user_attrs == {"plan": {"units": ["b"], "k": 2}}
        assert mine_read.system_attrs == theirs_read.system_attrs
    ours, theirs = pairs[0]
    for trial_id in (ours, theirs):
        proxy.set_trial_state_values(trial_id, TrialState.COMPLETE, [1.0])
    for method, args in steps:
        for storage, trial_id in ((proxy, ours), (optuna_write, theirs)):
            number = optuna_write.get_trial(trial_id).number
            assert _outcome(storage, method, trial_id, *args) == (
                f"UpdateFinishedTrialError: Trial#{number} has already finished and can not be "
                "updated."
            )
    missing = _outcome(proxy, "set_trial_user_attr", 10**9, "plan", 1)
    assert missing == _outcome(optuna_write, "set_trial_user_attr", 10**9, "plan", 1)
    assert missing.startswith("KeyError")
    optuna_write.engine.dispose()


@pytest.mark.postgres
def test_the_proxys_pool_checks_only_connections_that_sat_idle(pg_url: str) -> None:
    """A connection back in use at once is not checked (no round trip); one idle longer is
    checked, and one the server dropped meanwhile is replaced before it is used."""
    database = open_database(
        pg_url, Settings(), pool_size=2, overflow=0, heartbeat=False, pre_ping=False
    )
    ping_when_idle(database.engine, idle_s=0.5)
    database.engine.dispose()  # from here one connection, used by one thread
    watcher = sa.create_engine(pg_url, poolclass=sa.pool.NullPool).connect()
    watcher = watcher.execution_options(isolation_level="AUTOCOMMIT")

    def use() -> int:
        """Run a statement on a pooled connection; its server process."""
        with database.engine.connect() as c:
            return int(c.execute(sa.text("SELECT pg_backend_pid()")).scalar_one())

    def checked_out_last() -> str:
        """Check a connection out: the last statement its server process ran."""
        with database.engine.connect() as c:
            pid = c.connection.dbapi_connection.get_backend_pid()  # type: ignore[union-attr]
            query = "SELECT query FROM pg_stat_activity WHERE pid = :pid"
            return str(watcher.execute(sa.text(query), {"pid": pid}).scalar_one())

    try:
        first = use()
        assert checked_out_last() == "ROLLBACK"  # back in use at once: not checked
        time.sleep(0.7)
        assert checked_out_last() == "SELECT 1"  # idle longer: checked
        watcher.execute(sa.text("SELECT pg_terminate_backend(:pid)"), {"pid": first})
        time.sleep(0.7)
        second = use()  # the dropped connection was replaced, not raised
        assert second != first
    finally:
        watcher.close()
        database.engine.dispose()
