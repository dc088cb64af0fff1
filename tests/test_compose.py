"""docker-compose.yml and the Dockerfile, checked by parsing (no Docker engine runs here)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.cli import xtune

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    assert isinstance(data, dict)
    return data


def test_services_and_their_order(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert set(services) == {"postgres", "storage-proxy", "create-study", "dashboard", "worker"}
    assert services["storage-proxy"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert services["create-study"]["depends_on"]["storage-proxy"]["condition"] == "service_healthy"
    for name in ("dashboard", "worker"):
        assert (
            services[name]["depends_on"]["create-study"]["condition"]
            == "service_completed_successfully"
        )
    assert services["create-study"]["restart"] == "no"


def test_postgres_has_a_volume_and_a_healthcheck(compose: dict[str, Any]) -> None:
    pg = compose["services"]["postgres"]
    assert any(v.startswith("pgdata:") for v in pg["volumes"]) and "pgdata" in compose["volumes"]
    assert "pg_isready" in " ".join(pg["healthcheck"]["test"])
    assert all(p.startswith("127.0.0.1:") for p in pg["ports"])


def test_workers_reserve_gpus_and_scale(compose: dict[str, Any]) -> None:
    worker = compose["services"]["worker"]
    devices = worker["deploy"]["resources"]["reservations"]["devices"]
    assert devices[0]["driver"] == "nvidia" and "gpu" in devices[0]["capabilities"]
    assert worker["deploy"]["replicas"] >= 2
    assert "cuda" in worker["command"]


def test_dashboard_is_bound_to_localhost_with_the_artifact_volume(compose: dict[str, Any]) -> None:
    dash = compose["services"]["dashboard"]
    assert dash["ports"] == ["127.0.0.1:8080:8080"]
    assert any(v.startswith("artifacts:") for v in dash["volumes"])
    assert dash["environment"]["XTUNE_ARTIFACTS"] == "/artifacts"


def test_no_plaintext_password(compose: dict[str, Any]) -> None:
    for service in compose["services"].values():
        assert service.get("env_file") == ".env"
        for key, value in (service.get("environment") or {}).items():
            if "PASSWORD" in key:
                assert str(value).startswith("${"), key
    assert ".env" in (ROOT / ".gitignore").read_text().split()
    assert "POSTGRES_PASSWORD=" in (ROOT / ".env.example").read_text()


def test_no_url_is_built_from_a_credential(compose: dict[str, Any]) -> None:
    """A password pasted into a URL breaks it on @ / : # and is printed wherever the URL is."""
    text = (ROOT / "docker-compose.yml").read_text()
    urls = re.findall(r"[A-Za-z][\w+.-]*://[^\s\"']+", text)
    assert any(url.startswith("postgresql") for url in urls)
    for url in urls:
        assert "@" not in url and "PASSWORD" not in url.upper(), url
    for name, service in compose["services"].items():
        for key, value in (service.get("environment") or {}).items():
            if "://" in str(value):
                assert "${" not in str(value) and "@" not in str(value), (name, key)


def test_only_the_proxy_logs_in_to_postgresql(compose: dict[str, Any]) -> None:
    """Workers, the dashboard and create-study reach the study through the storage proxy, on
    the port it listens on, and hold no database credential; the proxy's pool is bounded and
    its port is not published (it has no login)."""
    from xtune.search.proxy import ProxyAddress

    proxy = compose["services"]["storage-proxy"]
    command = proxy["command"]
    assert command[:2] == ["xtune", "storage-proxy"] and "--pool-size" in command
    assert int(command[command.index("--pool-size") + 1]) <= 20
    port = command[command.index("--port") + 1]
    assert "ports" not in proxy
    assert f"127.0.0.1:{port}" in " ".join(proxy["healthcheck"]["test"])  # its own port
    for name in ("create-study", "dashboard", "worker"):
        env = compose["services"][name]["environment"]
        address = ProxyAddress.parse(env["XTUNE_STORAGE"])
        assert (address.host, str(address.port)) == ("storage-proxy", port), name
        assert not any(key.startswith("PG") for key in env), name


def test_the_proxy_logs_in_through_libpq_variables(compose: dict[str, Any]) -> None:
    from sqlalchemy.engine import make_url

    env = compose["services"]["storage-proxy"]["environment"]
    url = make_url(env["XTUNE_STORAGE"])
    assert (url.drivername, url.host, url.port) == ("postgresql+psycopg2", "postgres", 5432)
    assert (url.username, url.password, url.database) == (None, None, None)
    server = compose["services"]["postgres"]["environment"]
    assert env["PGUSER"] == server["POSTGRES_USER"]
    assert env["PGDATABASE"] == server["POSTGRES_DB"]
    assert env["PGPASSWORD"].startswith("${POSTGRES_PASSWORD:?")  # required, from .env


@pytest.mark.postgres
def test_libpq_variables_log_in_under_sqlalchemy(monkeypatch: pytest.MonkeyPatch) -> None:
    """The compose file's scheme on the real server: a URL with host and port only, and the
    user, database and password (here one that would break a URL) from PG* variables."""
    import os

    import sqlalchemy as sa
    from sqlalchemy.engine import make_url

    if not os.environ.get("TEST_DB_URL"):
        pytest.skip("TEST_DB_URL not set (PostgreSQL tests)")
    full = make_url(os.environ["TEST_DB_URL"])
    password = full.password or "p@ss/w:rd#?%1"  # a trust-auth server accepts any password
    monkeypatch.setenv("PGUSER", str(full.username))
    monkeypatch.setenv("PGDATABASE", str(full.database))
    monkeypatch.setenv("PGPASSWORD", str(password))
    bare = full.set(username=None, password=None, database=None)
    engine = sa.create_engine(bare)
    try:
        with engine.connect() as connection:
            row = connection.execute(sa.text("SELECT current_user, current_database()")).one()
            used = connection.connection.dbapi_connection.info.password  # type: ignore[union-attr]
    finally:
        engine.dispose()
    assert tuple(row) == (full.username, full.database)
    assert used == password  # libpq sent PGPASSWORD


def _cli_help(*command: str) -> str:
    result = xtune(*command, "--help", columns=250)
    assert result.returncode == 0, (command, result.stderr)
    return result.stdout


def test_every_command_it_runs_exists_in_our_cli(compose: dict[str, Any]) -> None:
    for name, service in compose["services"].items():
        command = service.get("command")
        if not command or command[0] != "xtune":
            continue
        words = command[1:]
        sub = words[0]
        help_text = _cli_help(sub)
        for word in words[1:]:
            if word.startswith("--"):
                assert word in help_text, f"{name}: xtune {sub} has no option {word}"
            elif word.endswith(".toml"):
                assert (ROOT / word).exists(), f"{name}: {word} is not in the repository"


def test_dockerfile_installs_the_search_side() -> None:
    text = (ROOT / "Dockerfile").read_text()
    assert re.search(r'pip install "?\.\[search', text)
    for path in ("pyproject.toml", "xtune", "studies"):
        assert path in text
