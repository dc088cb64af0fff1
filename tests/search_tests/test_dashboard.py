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

import pytest

from tests.search_tests.studies import write_study
from xtune.search import load_study_config, resolve_storage, run_search
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
        for _ in range(60):
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
    finally:
        proc.terminate()
        proc.wait(timeout=10)


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


@pytest.mark.skipif(
    CHROMIUM is None, reason="Debian's chromium is not installed (.ci/run installs it)"
)
def test_dashboard_in_a_real_browser_shows_the_study_and_its_trial_count(tmp_path: Path) -> None:
    study_file = write_study(tmp_path, trials=3)
    config = load_study_config(study_file)
    study = run_search(config, resolve_storage(config, None, Settings()), Settings())
    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-m", "xtune", "dashboard", str(study_file), "--port", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        for _ in range(60):
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/studies", timeout=2) as r:
                    study_id = json.loads(r.read())["study_summaries"][0]["study_id"]
                break
            except OSError:
                time.sleep(0.5)
        url = f"http://127.0.0.1:{port}/dashboard/studies/{study_id}/trials"
        dom = _chromium(url, tmp_path / "profile", "--dump-dom").stdout
        text = re.sub(
            r"\s+",
            " ",
            html.unescape(
                re.sub(r"<[^>]+>", " ", re.sub(r"<(style|script).*?</\1>", " ", dom, flags=re.S))
            ),
        )
        assert config.study.name in text
        assert f"{len(study.trials)} Trials" in text, text[:500]
        ARTIFACTS.mkdir(exist_ok=True)
        shot = ARTIFACTS / "dashboard_trials.png"
        _chromium(url, tmp_path / "profile", f"--screenshot={shot}")
        assert shot.exists() and shot.stat().st_size > 10_000
    finally:
        proc.terminate()
        proc.wait(timeout=10)
