"""Settings from the environment, read and validated once at a command's entry.

Every ``XTUNE_*`` variable is read here and nowhere else; the command passes the resulting
:class:`Settings` down (to the storage, the workers, the feature cache). A bad value is one
clear line and exit code 2 before any work starts. Logging is configured here too, once per
process (the CLI and each spawned worker).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from xtune.errors import SettingsError

DEFAULT_CACHE_DIR = Path.home() / ".cache" / "xtune"


def _seconds(env: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        value = low - 1
    if not low <= value <= high:
        raise SettingsError(
            f"environment variable {name}={raw!r} must be a whole number of seconds from {low} "
            f"to {high}; set e.g. {name}={default}, or unset it for the default ({default})."
        )
    return value


@dataclass(frozen=True)
class Settings:
    """Attributes:
    storage: ``$XTUNE_STORAGE``, the storage URL when no ``--storage`` is given.
    artifacts: ``$XTUNE_ARTIFACTS``, where learning curves go when no ``--artifacts`` is given.
    cache_dir: ``$XTUNE_CACHE_DIR``, the feature cache (default ``~/.cache/xtune``).
    heartbeat_s: ``$XTUNE_HEARTBEAT_S``, seconds between a database worker's heartbeats.
    grace_s: ``$XTUNE_GRACE_S``, seconds without a heartbeat before a trial counts as orphaned.
    """

    storage: str | None = None
    artifacts: Path | None = None
    cache_dir: Path = field(default_factory=lambda: DEFAULT_CACHE_DIR)
    heartbeat_s: int = 20
    grace_s: int = 60

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Read and check every ``XTUNE_*`` variable.

        Raises:
            SettingsError: naming the variable, its value and a valid example.
        """
        env = os.environ if env is None else env
        heartbeat = _seconds(env, "XTUNE_HEARTBEAT_S", 20, 1, 3600)
        grace = _seconds(env, "XTUNE_GRACE_S", 60, 1, 86400)
        if grace <= heartbeat:
            raise SettingsError(
                f"XTUNE_GRACE_S ({grace}) must be longer than XTUNE_HEARTBEAT_S ({heartbeat}), or "
                "every live trial would look orphaned; e.g. grace = 3 x heartbeat."
            )
        return cls(
            storage=env.get("XTUNE_STORAGE") or None,
            artifacts=Path(env["XTUNE_ARTIFACTS"]) if env.get("XTUNE_ARTIFACTS") else None,
            cache_dir=Path(env["XTUNE_CACHE_DIR"])
            if env.get("XTUNE_CACHE_DIR")
            else DEFAULT_CACHE_DIR,
            heartbeat_s=heartbeat,
            grace_s=grace,
        )


def _quiet_interrupts(record: logging.LogRecord) -> bool:
    """Drop Optuna's traceback for a trial failed by Ctrl-C or SIGTERM (the CLI says it in one
    line); keep every other failure's log."""
    return "KeyboardInterrupt" not in record.getMessage()


def configure_logging() -> None:
    """Once per process: Optuna at WARNING, interrupts not logged as failures."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    logger = logging.getLogger("optuna")
    for handler in logger.handlers:  # records propagate from child loggers
        if _quiet_interrupts not in handler.filters:
            handler.addFilter(_quiet_interrupts)
