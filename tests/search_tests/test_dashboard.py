"""`xtune dashboard` serves the study (real optuna-dashboard over HTTP, bound to 127.0.0.1)."""

from __future__ import annotations

import html
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import optuna
import pytest

from tests.search_tests.studies import write_study
from xtune.search import load_study_config, resolve_storage, run_search
from xtune.search.states import is_over_cap, is_trained
from xtune.settings import Settings

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_dashboard_serves_the_study_with_its_note_and_artifacts(tmp_path: Path) -> None:
    study_file = write_study(tmp_path, trials=2)
    config = load_study_config(study_file)
    study = run_search(config, resolve_storage(config, None, Settings()), Settings())
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "xtune", "dashboard", str(study_file), "--port", str(port)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=os.environ | {"COLUMNS": "200"},
    )  # fmt: skip
    try:
        body = None
        for _ in range(240):  # up to 2 minutes: a loaded 2-core machine starts it slowly
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/studies", timeout=2) as r:
                    body = json.loads(r.read())
                break
            except OSError:
                time.sleep(0.5)
        assert body is not None, "dashboard did not answer"
        (summary,) = [s for s in body["study_summaries"] if s["study_name"] == config.study.name]
        study_id = summary["study_id"]
        with urllib.request.urlopen(
            f"http://127.0.0.1:{port}/api/studies/{study_id}", timeout=5
        ) as r:
            detail = json.loads(r.read())
        assert len(detail["trials"]) == len(study.trials) >= 2  # draws over a cap too
        attrs = {a["key"]: a["value"] for a in detail["trials"][0]["user_attrs"]}
        assert attrs["resources/feasible"] in ("True", "False"), attrs  # shown as str(value)
        assert "Infeasible trials" in detail["note"]["body"]
        assert any(t.get("artifacts") for t in detail["trials"])  # learning curves
        _check_states_and_notes(detail, study)
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def _check_states_and_notes(detail: dict, study: optuna.Study) -> None:  # type: ignore[type-arg]
    """Over-cap trials are Pruned with no values (tpe), trained ones Complete; each trial's
    note names its fate, and a trained one's values under the objectives' names."""
    assert detail["objective_names"] == ["accuracy", "loss"]
    served = {t["number"]: t for t in detail["trials"]}
    over = [t.number for t in study.trials if is_over_cap(t)]
    trained = [t.number for t in study.trials if is_trained(t)]
    assert over and trained, [(t.number, t.state) for t in study.trials]
    for n in over:
        assert served[n]["state"] == "Pruned" and not served[n].get("values"), served[n]
        assert served[n]["note"]["body"].startswith("**over a cap**: over the cap: ")
    for n in trained:
        assert served[n]["state"] == "Complete", served[n]
        body = served[n]["note"]["body"]
        assert body.startswith("**trained**, within every cap: accuracy 0."), body
        assert all(w in body for w in (", loss ", "majority baseline 0.", "edge ")), body


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


def _chromium(url: str, profile: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    flags = [
        "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        f"--user-data-dir={profile}", "--window-size=1280,900", "--virtual-time-budget=20000",
    ]  # fmt: skip
    return subprocess.run(
        [str(CHROMIUM), *flags, *extra, url], capture_output=True, text=True, timeout=120
    )


def _page_text(url: str, profile: Path) -> str:
    """The page's text as Chromium renders it, one space between words."""
    dom = _chromium(url, profile, "--dump-dom").stdout
    text = re.sub(r"<[^>]+>", " ", re.sub(r"<(style|script).*?</\1>", " ", dom, flags=re.S))
    return re.sub(r"\s+", " ", html.unescape(text))


@pytest.mark.skipif(
    CHROMIUM is None, reason="Debian's chromium is not installed (.ci/run installs it)"
)
def test_dashboard_in_a_real_browser_shows_trial_states_and_notes(tmp_path: Path) -> None:
    study_file = write_study(tmp_path, trials=3)
    config = load_study_config(study_file)
    study = run_search(config, resolve_storage(config, None, Settings()), Settings())
    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-m", "xtune", "dashboard", str(study_file), "--port", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        for _ in range(240):
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/studies", timeout=2) as r:
                    study_id = json.loads(r.read())["study_summaries"][0]["study_id"]
                break
            except OSError:
                time.sleep(0.5)
        url = f"http://127.0.0.1:{port}/dashboard/studies/{study_id}/trials"
        text = _page_text(url, tmp_path / "profile")
        assert config.study.name in text
        assert f"{len(study.trials)} Trials" in text, text[:500]
        over = next(t.number for t in study.trials if is_over_cap(t))  # trial 1, with seed 0
        trained = next(t.number for t in study.trials if is_trained(t))
        page = _page_text(f"{url}?numbers={over}", tmp_path / "profile")
        assert f"Trial {over} (trial_id=" in page and f"Trial {over} Pruned" in page, page
        assert "Note over a cap : over the cap:" in page, page
        page = _page_text(f"{url}?numbers={trained}", tmp_path / "profile")
        assert "Note trained , within every cap: accuracy 0." in page, page
        ARTIFACTS.mkdir(exist_ok=True)
        shot = ARTIFACTS / "dashboard_trials.png"
        _chromium(url, tmp_path / "profile", f"--screenshot={shot}")
        assert shot.exists() and shot.stat().st_size > 10_000
    finally:
        proc.terminate()
        proc.wait(timeout=10)
