"""The storage proxy (`xtune storage-proxy`): commands through grpc://, xtune's own heartbeat
through it, and the one line for direct PostgreSQL past its connection limit. Every test runs
a real proxy process in front of the real server at TEST_DB_URL."""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import optuna
import pytest
import sqlalchemy as sa
from optuna.trial import TrialState

from tests.cli import xtune
from tests.search_tests.proxy import Proxy
from tests.search_tests.studies import write_study
from xtune.features import load_bars
from xtune.search import create_study, load_study_config, open_storage, read, sweep
from xtune.search._sweep import fail_cut_off
from xtune.search.beat import KEY, Heartbeat, beat_age
from xtune.search.proxy import ConnectionLimit, connection_limit
from xtune.search.record import TrialRecord, Worker, write
from xtune.search.storage import StorageError
from xtune.settings import Settings

pytestmark = pytest.mark.postgres


@pytest.fixture(scope="module")
def proxy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Proxy]:
    """One proxy process for the module's tests (each test uses studies of its own)."""
    if not os.environ.get("TEST_DB_URL"):
        pytest.skip("TEST_DB_URL not set (PostgreSQL tests)")
    log = tmp_path_factory.mktemp("proxy") / "proxy.log"
    running = Proxy(os.environ["TEST_DB_URL"], log).start()
    yield running
    assert "Traceback" not in running.stop()


def _xtune(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return xtune(*args, env=env, columns=250)


def _get(app: Any, path: str) -> Any:
    """The dashboard's JSON answer to GET ``path``, through its WSGI app."""
    from wsgiref.util import setup_testing_defaults

    environ: dict[str, Any] = {"PATH_INFO": path}
    setup_testing_defaults(environ)
    seen: list[str] = []
    body = b"".join(app(environ, lambda status, *_: seen.append(status)))
    assert seen == ["200 OK"], (seen, body[:500])
    return json.loads(body)


@pytest.mark.slow
def test_search_status_and_dashboard_through_the_proxy(
    tmp_path: Path, pg_url: str, proxy: Proxy
) -> None:
    """A search, `status` and the dashboard take grpc://host:port as their storage."""
    from optuna_dashboard import wsgi

    study_file = write_study(tmp_path, trials=3)
    name = load_study_config(study_file).study.name
    searched = _xtune("search", str(study_file), "--storage", proxy.url)
    try:
        assert searched.returncode == 0, searched.stderr[-3000:]
        shown = _xtune(
            "status", str(study_file), "--storage", proxy.url, "--format", "json", "--no-plots"
        )
        assert shown.returncode == 0, shown.stderr[-3000:]
        assert json.loads(shown.stdout)["states"]["COMPLETE"] >= 3
        studies = _get(wsgi(open_storage(proxy.url)), "/api/studies")["study_summaries"]
        (study_id,) = [s["study_id"] for s in studies if s["study_name"] == name]
        detail = _get(wsgi(open_storage(proxy.url)), f"/api/studies/{study_id}")
        assert len(detail["trials"]) >= 3
    finally:
        optuna.delete_study(study_name=name, storage=open_storage(proxy.url))


@pytest.mark.filterwarnings(
    "ignore:Heartbeat of storage is supposed to be used with Study.optimize"
)
def test_the_sweep_reads_xtunes_heartbeat_through_the_proxy(
    tmp_path: Path, pg_url: str, proxy: Proxy
) -> None:
    """Through the proxy there is no heartbeat of Optuna's: a trial of a worker on another
    machine is orphaned when xtune's own stamp is older than the grace period, or when it
    never stamped and started longer ago; a fresh stamp keeps it."""
    config = load_study_config(write_study(tmp_path))
    storage = open_storage(proxy.url)
    study, _ = create_study(config, proxy.url, Settings(), load_bars(tmp_path / "bars.csv"))
    try:
        elsewhere = replace(Worker.here(seed=1), host="another-machine")
        fresh, stale, silent = study.ask(), study.ask(), study.ask()
        for trial in (fresh, stale, silent):
            trial.suggest_categorical("family", ["lstm"])
            write(trial, TrialRecord(status="running", worker=elsewhere))
        storage.set_trial_system_attr(fresh._trial_id, KEY, time.time())
        storage.set_trial_system_attr(stale._trial_id, KEY, time.time() - 120)
        assert sweep(study, storage, grace_s=60) == [stale.number]
        assert sweep(study, storage, grace_s=60) == []  # the silent one is young yet
        assert sweep(study, storage, grace_s=0) == [fresh.number, silent.number]
        trials = study.get_trials()
        assert all(trials[n].state == TrialState.FAIL for n in (0, 1, 2))
        retries = [read(t).retry_of for t in trials if t.state == TrialState.WAITING]
        assert sorted(retries) == [0, 1, 2]  # type: ignore[type-var]
    finally:
        optuna.delete_study(study_name=config.study.name, storage=storage)


def test_the_heartbeat_stamps_while_the_objective_runs(pg_url: str, proxy: Proxy) -> None:
    storage = open_storage(proxy.url)
    study = optuna.create_study(storage=storage)
    try:
        stamps: list[float] = []

        def objective(trial: optuna.Trial) -> tuple[float, ...]:
            for _ in range(6):
                time.sleep(0.25)
                stamps.append(storage.get_trial(trial._trial_id).system_attrs[KEY])
            return (1.0,)

        study.optimize(Heartbeat(storage, interval_s=0.5).wrap(objective), n_trials=1)
        assert len(set(stamps)) >= 3  # one at the start, then every 0.5 s
        (done,) = study.get_trials()
        age = beat_age(done)
        assert age is not None and age < 5
    finally:
        optuna.delete_study(study_name=study.study_name, storage=storage)


def test_a_proxy_url_that_is_wrong_is_one_line_without_its_secret() -> None:
    with pytest.raises(StorageError, match=r"\*\*\*.*grpc://HOST:PORT") as bad:
        open_storage("grpc://user:secret@127.0.0.1:13000/db")
    assert "secret" not in str(bad.value)


@pytest.mark.slow  # it waits for the proxy as long as a command does
def test_a_proxy_url_where_no_proxy_answers_is_one_line(tmp_path: Path) -> None:
    result = _xtune("status", str(write_study(tmp_path)), "--storage", "grpc://127.0.0.1:1")
    assert result.returncode == 2
    assert "no storage proxy answers at grpc://127.0.0.1:1" in result.stderr
    assert "Traceback" not in result.stderr


def _fill(url: str) -> tuple[list[sa.engine.Connection], sa.exc.OperationalError]:
    """Connections to ``url`` until the server refuses one; those held and the refusal."""
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    held = []
    for _ in range(2000):
        try:
            held.append(engine.connect())
        except sa.exc.OperationalError as exc:
            return held, exc
    raise AssertionError("the server took 2,000 connections")


def test_direct_postgresql_past_its_connection_limit_is_one_line(
    tmp_path: Path, pg_url: str
) -> None:
    """The server's own max_connections, reached for a moment: a command says so in one line
    naming the limit and the proxy; so does a worker whose next connection is refused (the
    driver's error deep in Optuna's)."""
    study_file = write_study(tmp_path)
    held, refused = _fill(pg_url)
    try:
        result = _xtune("status", str(study_file), "--storage", pg_url)
        with pytest.raises(ConnectionLimit) as opening:
            open_storage(pg_url)
    finally:
        for connection in held:
            connection.close()
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert "max_connections" in result.stderr and "xtune storage-proxy" in result.stderr
    assert len(" ".join(lines)) == len(result.stderr.strip().replace("\n", " ")), lines
    assert "Traceback" not in result.stderr
    assert "storage-proxy" in str(opening.value)
    try:  # as Optuna's RDBStorage wraps it in a worker
        raise optuna.exceptions.StorageInternalError("An exception is raised") from refused
    except optuna.exceptions.StorageInternalError as exc:
        assert isinstance(connection_limit(pg_url, exc), ConnectionLimit)
    assert connection_limit(pg_url, RuntimeError("too many clients")) is None


def test_a_trial_an_outage_failed_inside_the_objective_is_retried_once(
    tmp_path: Path, pg_url: str, proxy: Proxy
) -> None:
    """The outage raised inside the objective, and Optuna stored FAIL once the storage was
    back: the worker that settles the cut-off trial queues its parameters again, once, and
    not where a sweep requeued it already."""
    config = load_study_config(write_study(tmp_path))
    storage = open_storage(proxy.url)
    study, _ = create_study(config, proxy.url, Settings(), load_bars(tmp_path / "bars.csv"))
    try:
        cut, swept = study.ask(), study.ask()
        for trial in (cut, swept):
            trial.suggest_categorical("family", ["lstm"])
        study.tell(cut, state=TrialState.FAIL)
        assert fail_cut_off(study, storage, cut._trial_id)
        assert not fail_cut_off(study, storage, cut._trial_id)  # queued once only
        write(swept, TrialRecord(status="running", worker=Worker.here(seed=1)))
        storage.set_trial_system_attr(swept._trial_id, KEY, time.time())
        assert sweep(study, storage, grace_s=60) == []  # alive: this process, and beating
        storage.set_trial_system_attr(swept._trial_id, KEY, time.time() - 120)
        assert sweep(study, storage, grace_s=60) == [swept.number]
        assert not fail_cut_off(study, storage, swept._trial_id)
        retries = [read(t).retry_of for t in study.get_trials() if t.state == TrialState.WAITING]
        assert sorted(retries) == [cut.number, swept.number]  # type: ignore[type-var]
    finally:
        optuna.delete_study(study_name=config.study.name, storage=storage)


def test_a_proxy_that_cannot_start_says_why_in_one_line(pg_url: str, proxy: Proxy) -> None:
    """A port another proxy holds, and a storage that is not a database: one line, exit 2."""
    taken = _xtune("storage-proxy", "--storage", pg_url, "--port", str(proxy.port))
    itself = _xtune("storage-proxy", "--storage", proxy.url, "--port", str(proxy.port + 1))
    assert (taken.returncode, itself.returncode) == (2, 2)
    assert taken.stderr.count("\n") == 1 and "the port is taken" in taken.stderr, taken.stderr
    assert "serves a database, not grpc://" in itself.stderr, itself.stderr
