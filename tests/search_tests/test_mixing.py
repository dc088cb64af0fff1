"""A study refuses what contradicts it; runs do not repeat each other; devices are honest."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import torch

from tests.search_tests.studies import write_study
from tests.search_tests.test_search import _study, xtune
from xtune.features.sample import synthetic_bars
from xtune.search import StudySummary, read
from xtune.search.states import ran_in_full

pytestmark = pytest.mark.slow


def test_reusing_a_study_name_with_other_objectives_is_refused(tmp_path: Path) -> None:
    study_file = write_study(tmp_path, name="mixed", trials=1)
    assert xtune("search", str(study_file)).returncode == 0
    write_study(tmp_path, name="mixed", trials=2, objectives='["sharpe", "loss"]')
    result = xtune("search", str(study_file))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "was created with objectives ['accuracy', 'loss']" in result.stderr
    assert len(_study(study_file).trials) == 1  # nothing added


def test_other_bars_need_a_flag_and_are_marked(tmp_path: Path) -> None:
    study_file = write_study(tmp_path, name="bars", trials=1)
    assert xtune("search", str(study_file)).returncode == 0
    other = tmp_path / "other.csv"
    synthetic_bars(1500, seed=10).to_csv(other)
    refused = xtune("search", str(study_file), "--data", str(other), "--n-trials", "1")
    assert refused.returncode == 2 and "not the bars study 'bars' searches" in refused.stderr
    assert len(_study(study_file).trials) == 1
    allowed = xtune("search", str(study_file), "--data", str(other), "--n-trials", "1",
                    "--allow-other-data")  # fmt: skip
    assert allowed.returncode == 0, allowed.stderr
    status = xtune("status", str(study_file), "--format", "json", "--no-plots")
    front = StudySummary.from_json(status.stdout).pareto_front
    trials = _study(study_file).trials
    for row in front:
        assert row.other_bars == (read(trials[row.trial]).data.source == str(other))  # type: ignore[union-attr]


def test_resumed_runs_draw_fresh_seeds_and_record_them(tmp_path: Path) -> None:
    study_file = write_study(tmp_path, trials=3)
    for _ in range(3):
        assert xtune("search", str(study_file), "--n-trials", "1").returncode == 0
    trials = [t for t in _study(study_file).trials if ran_in_full(t)]  # draws over a cap aside
    seeds = [read(t).worker.seed for t in trials]  # type: ignore[union-attr]
    assert len(trials) == 3 and seeds[0] == 0  # the study's seed first,
    assert len(set(seeds)) == 3  # then a fresh one per run
    assert len({tuple(sorted(t.params.items())) for t in trials}) == 3  # no repeated trial


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks a machine without a GPU")
def test_cuda_without_a_gpu_is_refused_before_anything_is_created(tmp_path: Path) -> None:
    study_file = write_study(tmp_path)
    result = xtune("search", str(study_file), "--device", "cuda")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "CPU-only build" in result.stderr and "--index-url" in result.stderr
    assert not list(tmp_path.glob("*.journal"))


def test_every_trial_records_the_device_it_ran_on(tmp_path: Path) -> None:
    study_file = write_study(tmp_path, trials=2)
    assert xtune("search", str(study_file)).returncode == 0
    for trial in _study(study_file).trials:
        device = read(trial).device
        assert device is not None and (device.device, device.precision, device.gpu) == (
            "cpu",
            "fp32",
            "",
        )
        assert device.torch.startswith(torch.__version__.split("+")[0])


def test_serving_the_dashboard_beyond_localhost_warns(tmp_path: Path) -> None:
    study_file = write_study(tmp_path)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        [sys.executable, "-m", "xtune", "dashboard", str(study_file), "--host", "0.0.0.0",
         "--port", str(port)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env=os.environ | {"COLUMNS": "300"},
    )  # fmt: skip
    try:
        time.sleep(8)
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=20)
    assert "anyone who can reach port" in err and "DELETE" in err


@pytest.mark.postgres
def test_many_create_study_at_once_on_a_fresh_database(tmp_path: Path, pg_url: str) -> None:
    import sqlalchemy
    from sqlalchemy.engine import make_url

    name = f"xtune_race_{uuid.uuid4().hex[:8]}"
    admin = sqlalchemy.create_engine(
        make_url(pg_url).set(database="postgres"), isolation_level="AUTOCOMMIT"
    )
    with admin.connect() as c:
        c.execute(sqlalchemy.text(f"CREATE DATABASE {name}"))
    url = make_url(pg_url).set(database=name).render_as_string(hide_password=False)
    try:
        study_file = write_study(tmp_path, storage=url)
        procs = [subprocess.Popen([sys.executable, "-m", "xtune", "create-study", str(study_file)],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                 for _ in range(4)]  # fmt: skip
        results = [(p.wait(timeout=120), p.stderr.read() if p.stderr else "") for p in procs]
        assert all(code == 0 for code, _ in results), results
    finally:
        with admin.connect() as c:
            c.execute(sqlalchemy.text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        admin.dispose()
