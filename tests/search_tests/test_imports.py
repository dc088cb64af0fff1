"""What importing a part of ``xtune.search`` pulls in: the storage proxy starts without torch,
and the package's names stay what they were whatever was imported first."""

from __future__ import annotations

import subprocess
import sys


def _run(script: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=300
    )


def test_the_storage_proxy_command_does_not_import_torch() -> None:
    result = _run(
        "import sys\n"
        "import xtune.cli, xtune.cli._proxy, xtune.search.proxy_server, xtune.search.proxy_service\n"
        "assert 'torch' not in sys.modules, 'torch'\n"
        "import xtune.search\n"
        "assert 'torch' not in sys.modules, 'torch after the package'\n"
    )
    assert result.returncode == 0, result.stderr[-2000:]


def test_sweep_and_replay_are_the_functions_after_their_modules_are_imported() -> None:
    result = _run(
        "import inspect\n"
        "import xtune.search._sweep, xtune.search._replay, xtune.search.record\n"
        "from xtune.search import StudyConfig, read, replay, sweep\n"
        "import xtune.search as search\n"
        "assert inspect.isfunction(sweep) and inspect.isfunction(replay), (sweep, replay)\n"
        "assert search.sweep is sweep and search.replay is replay\n"
        "assert sweep.__module__ == 'xtune.search._sweep' and inspect.isclass(StudyConfig)\n"
        "for name in search.__all__:\n"
        "    getattr(search, name)\n"
        "assert not hasattr(search, 'no_such_name')\n"
    )
    assert result.returncode == 0, result.stderr[-2000:]
