"""Every exception xtune defines, in one module.

:class:`XtuneError` and its subclasses are shown to a user: each says what is wrong, where,
and what to do, and the CLI prints it as one line with exit code 2 instead of a traceback.
The last four carry a decision inside xtune (stop a trial, fail one, reword a rule's
message) and never reach a user as they are.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # a type only: this module imports nothing of xtune's at run time
    from xtune.models._evaluate import Scores


class XtuneError(Exception):
    """Base class for errors the CLI prints as a message (exit code 2) instead of a traceback."""


# ----------------------------------------------------------------------- bars and features
class DataError(XtuneError, ValueError):
    """The input bars cannot be used; the message names the file, column and first bad row."""


class FeatureError(XtuneError, ValueError):
    """A feature name is unknown or a feature produced unusable values."""


class SpecError(XtuneError, ValueError):
    """A data/label/split setting is invalid or does not fit the data."""


# ------------------------------------------------------------------- the study and search
class SettingsError(XtuneError):
    """An ``XTUNE_*`` environment variable has a value xtune cannot use."""


class StudyError(XtuneError, ValueError):
    """A study file is invalid; the message names the file and key."""


class StudyNotFound(XtuneError):
    """No study of that name in that storage."""


class SeedError(XtuneError, ValueError):
    """A setup to enqueue does not fit the study; the message names the entry and the key."""


class StorageError(XtuneError):
    """The storage cannot be reached or opened; the message hides passwords."""


class ConnectionLimit(StorageError):
    """The database refused a connection for its ``max_connections`` limit."""


class JournalError(XtuneError):
    """The journal file is damaged, or is some other file; the message names the line."""


class ProxyError(XtuneError):
    """The proxy cannot start: a storage it cannot serve, or an address it cannot listen on."""


class DeviceError(XtuneError):
    """The requested device cannot train; the message says how to get one that can."""


class CapError(XtuneError):
    """A trial (e.g. an enqueued one) asks for more than the hard caps allow."""


class InfeasibleSpace(XtuneError):
    """Nearly every configuration of the space breaks a cap; the message names the cap."""


class TrainingKeepsFailing(XtuneError):
    """Every recent trial's training raised; the message names the last error."""


# ------------------------------------------------------------ bundles and the trading PC
class BundleError(XtuneError):
    """A bundle is missing a file, was modified, or has a format this xtune cannot read."""


class ConsensusError(XtuneError):
    """Bundles that cannot be combined: too few, other bars, other labels, no common test."""


class ExportError(XtuneError):
    """Export cannot go on; the message says why and what to do."""


class DistillError(XtuneError):
    """Distillation cannot go on; the message says why and what to do."""


# ------------------------------------------------------------------ inside xtune only
class Invalid(ValueError):
    """A value breaks its key's rule; the message names the key and the value, and the fix.
    Its caller words it as a :class:`StudyError` or :class:`SeedError` for its file."""


class SplitTooSmall(Exception):
    """The rows cannot hold the split's parts; the split turns it into a :class:`SpecError`
    that names the rows needed, and ``min_rows`` searches with it."""


class Stopped(Exception):
    """Raised by a rung's judge to end a trial there: ``scores`` are the trial's validation
    scores at ``rung`` (what it reports), ``reason`` says why it was stopped."""

    def __init__(self, rung: str, scores: Scores, reason: str) -> None:
        super().__init__(reason)
        self.rung, self.scores, self.reason = rung, scores, reason


class TrialFault(Exception):
    """Training raised (out of memory, an error in a rare configuration): this trial is FAIL
    with the reason recorded, and the worker goes on."""
