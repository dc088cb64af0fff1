"""`xtune dashboard` serves the study (real optuna-dashboard over HTTP, bound to 127.0.0.1)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from tests.search_tests.studies import write_study
from xtune.search import load_study_config, resolve_storage, run_search


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_dashboard_serves_the_study_with_its_note_and_artifacts(tmp_path: Path) -> None:
    study_file = write_study(tmp_path, trials=2)
    config = load_study_config(study_file)
    run_search(config, resolve_storage(config))
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
        assert len(detail["trials"]) == 2
        assert "feasible" in json.dumps(detail["trials"][0]["user_attrs"])
        assert "Infeasible trials" in json.dumps(detail.get("note", detail))
        assert any(t.get("artifacts") for t in detail["trials"])  # learning curves
    finally:
        proc.terminate()
        proc.wait(timeout=10)
