"""Errors that xtune shows to a user: each one says what is wrong, where, and what to do."""

from __future__ import annotations


class XtuneError(Exception):
    """Base class for errors the CLI prints as a message (exit code 2) instead of a traceback."""


class DataError(XtuneError, ValueError):
    """The input bars cannot be used; the message names the file, column and first bad row."""


class FeatureError(XtuneError, ValueError):
    """A feature name is unknown or a feature produced unusable values."""


class SpecError(XtuneError, ValueError):
    """A data/label/split setting is invalid or does not fit the data."""
