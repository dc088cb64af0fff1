"""Secrets never reach the screen: ``mask()`` on every form of storage URL, and the real CLI
on a server it cannot reach (port 1 on this machine refuses at once)."""

from __future__ import annotations

import os
import random
import subprocess
import sys
from pathlib import Path

import pytest

from xtune.search.storage import mask

ROOT = Path(__file__).resolve().parents[1]
HOST, DB = "db.example", "studies"
PG = f"postgresql+psycopg2://xtune@{HOST}:5432/{DB}"  # no password: query forms append to it

# url, every form of its secret that must not appear, what must stay visible for debugging
URLS = [
    pytest.param(f"postgresql+psycopg2://xtune:s3cr3t@{HOST}:5432/{DB}", ["s3cr3t"],
                 ["xtune", HOST, "5432", DB], id="userinfo"),
    pytest.param(f"postgresql+psycopg2://xtune:p@ssw0rd@{HOST}:5432/{DB}", ["p@ssw0rd", "ssw0rd"],
                 ["xtune", HOST, "5432", DB], id="raw-at"),
    pytest.param(f"postgresql://xtune:a@b@c0ffee@{HOST}/{DB}", ["a@b@c0ffee", "b@c0ffee", "c0ffee"],
                 ["xtune", HOST, DB], id="several-at"),
    pytest.param(f"postgresql://xtune:p%40ssw0rd@{HOST}/{DB}", ["p%40ssw0rd", "p@ssw0rd", "ssw0rd"],
                 ["xtune", HOST, DB], id="percent-encoded"),
    pytest.param(f"postgresql://xtune:s3/cr:3t#?x=1@{HOST}/{DB}", ["s3/cr", "cr:3t", "3t#", "x=1"],
                 ["xtune", HOST, DB], id="raw-url-delimiters"),
    pytest.param(f"{PG}?password=s3cr3t", ["s3cr3t"], ["xtune", HOST, "5432", DB], id="query"),
    pytest.param(f"{PG}?sslmode=require&password=s3cr3t&application_name=xtune", ["s3cr3t"],
                 [HOST, DB, "sslmode=require", "&application_name=xtune"], id="query-among-others"),
    pytest.param(f"{PG}?sslmode=verify-full&sslpassword=k3yp4ss", ["k3yp4ss"],
                 [HOST, DB, "sslmode=verify-full"], id="sslpassword"),
    pytest.param(f"{PG}?PASSWORD=s3cr3t", ["s3cr3t"], [HOST, DB], id="uppercase-name"),
    pytest.param(f"{PG}?pass%77ord=s3cr3t", ["s3cr3t"], [HOST, DB], id="encoded-name"),
    pytest.param(f"{PG}?auth_token=t0k3n&api_key=k3y&client_secret=sh4re", ["t0k3n", "k3y", "sh4re"],
                 [HOST, DB], id="token-key-secret"),
    pytest.param(f"{PG}?password=se@cr3t", ["se@cr3t", "cr3t"], ["xtune", HOST, DB], id="query-raw-at"),
    pytest.param(f"{PG}?application_name=a?password=s3cr3t", ["s3cr3t"], [HOST, DB],
                 id="query-inside-a-value"),
    pytest.param(f"postgresql://xtune:s3cr3t@{HOST}/{DB}?password=s3cr3t2", ["s3cr3t"], [HOST, DB],
                 id="userinfo-and-query"),
    pytest.param(f"postgresql://xtune:s3cr3t@[::1]:5432/{DB}", ["s3cr3t"], ["[::1]:5432", DB],
                 id="ipv6"),
    pytest.param(f"postgresql://xtune@server:s3cr3t@{HOST}/{DB}", ["s3cr3t"],
                 ["xtune@server", HOST, DB], id="raw-at-in-user"),
    # unparsable or ambiguous: more is hidden, never the password
    pytest.param("postgresql://xtune:s3cr3t", ["s3cr3t"], ["xtune"], id="no-host"),
    pytest.param(f"postgresql://xtune:s3cr3t@{HOST}:notaport/{DB}", ["s3cr3t", "notaport"],
                 [HOST, DB], id="bad-port"),
    pytest.param(f"postgresql://xtune:s3cr3t@{HOST}/{DB}?application_name=me@laptop", ["s3cr3t"],
                 ["xtune"], id="raw-at-in-a-query-value"),
    pytest.param(f"postgresql://xtune:pa?password=s3cr3t@{HOST}/{DB}", ["pa?", "s3cr3t"], ["xtune"],
                 id="query-like-password"),
]  # fmt: skip


@pytest.mark.parametrize(("url", "secrets", "visible"), URLS)
def test_mask_hides_every_form_of_the_secret(
    url: str, secrets: list[str], visible: list[str]
) -> None:
    masked = mask(url)
    assert "***" in masked
    for secret in secrets:
        assert secret not in masked, (url, masked)
    for part in visible:
        assert part in masked, (url, masked)


@pytest.mark.parametrize(
    "url",
    [
        "studies/quickstart.journal",
        "/tmp/runs/p@ss:word.journal",  # a file path, however odd, is not a URL
        PG,
        f"{PG}?sslmode=require&application_name=xtune",
        f"postgresql+psycopg2://{HOST}:5432",  # docker-compose: libpq reads PG* variables
        "postgresql://h1:5432,h2:5433/studies",
        "sqlite:///studies/quickstart.db",
    ],
)
def test_mask_leaves_what_holds_no_secret(url: str) -> None:
    assert mask(url) == url


def _password(rng: random.Random) -> tuple[str, list[str]]:
    """A password of numbered chunks joined by URL delimiters, and its chunks."""
    chunks = [f"Q{i}W{rng.randrange(10**6)}" for i in range(rng.randint(1, 4))]
    password = "".join(rng.choice("@/:#?=%+!$;, ") + chunk for chunk in chunks)
    return password, chunks


def test_mask_hides_random_passwords_with_url_delimiters() -> None:
    rng = random.Random(7)
    for _ in range(500):
        password, chunks = _password(rng)
        for url in (
            f"postgresql+psycopg2://xtune:{password}@{HOST}:5432/{DB}",
            f"{PG}?sslmode=require&password={password}",
        ):
            masked = mask(url)
            assert not any(chunk in masked for chunk in chunks), (url, masked)
            assert all(part in masked for part in ("xtune", HOST, DB)), (url, masked)


# open_storage() appends the driver's first error line, scrubbed of the URL's hidden parts:
# a raw @ makes the driver quote part of the password as a host, a missing host as a port.


@pytest.mark.slow
@pytest.mark.parametrize(
    ("storage", "secrets"),
    [
        ("postgresql+psycopg2://postgres:s3cr3tPW@127.0.0.1:1/test", ["s3cr3tPW"]),
        ("postgresql+psycopg2://postgres@127.0.0.1:1/test?password=s3cr3tPW", ["s3cr3tPW"]),
        ("postgresql+psycopg2://postgres@127.0.0.1:1/test?sslmode=disable&sslpassword=s3cr3tPW",
         ["s3cr3tPW"]),
        ("postgresql+psycopg2://postgres:p@ss3cr3tPW@127.0.0.1:1/test", ["p@ss3cr3tPW", "ss3cr3tPW"]),
        ("postgresql+psycopg2://postgres:s3cr3tPW", ["s3cr3tPW"]),
    ],
    ids=["userinfo", "query", "sslpassword", "raw-at", "no-host"],
)  # fmt: skip
def test_cli_never_prints_the_password(storage: str, secrets: list[str]) -> None:
    env = {k: v for k, v in os.environ.items() if k != "XTUNE_STORAGE" and not k.startswith("PG")}
    env["COLUMNS"] = "250"
    result = subprocess.run(
        [sys.executable, "-m", "xtune", "status", "studies/quickstart.toml",
         "--storage", storage, "--no-plots"],
        cwd=ROOT, capture_output=True, text=True, env=env, timeout=120,
    )  # fmt: skip
    output = result.stdout + result.stderr
    assert result.returncode == 2, output
    assert "Traceback" not in output, output
    assert mask(storage) in output, output  # the message still says where it tried
    for secret in secrets:
        assert secret not in output, output
