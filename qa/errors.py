"""Named errors. Each one carries a message a person can act on.

The edges turn them into exit codes (scripts) and 4xx JSON (web): see `exit_code`.
"""

from __future__ import annotations


class QAError(Exception):
    """Base of every error the library raises on purpose."""

    exit_code = 1


class InputError(QAError):
    """An input file or record cannot be turned into an article."""

    exit_code = 2


class ArticleEmpty(InputError):
    """Nothing is left of an article after cleaning."""


class UnknownFormat(InputError):
    """A file whose format (by extension or content) is not one we ingest."""


class InvalidRecord(InputError):
    """A JSON record that is not valid JSON or lacks a usable `text`."""


class CorpusMissing(InputError):
    """The corpus folder or an input file does not exist."""


class ArticleTooLarge(InputError):
    """An article over the size limit (qa.settings `max_article_bytes`)."""


class Unreadable(InputError):
    """An input file the operating system will not let us read."""


class IndexProblem(QAError):
    """Base of the errors about an index folder."""

    exit_code = 3


class IndexMissing(IndexProblem):
    """No index at the given folder."""


class IndexMismatch(IndexProblem):
    """The files of an index folder disagree with each other or are damaged."""


class EncoderMismatch(IndexProblem):
    """The index was built with another encoder than the one asked for."""


class NonFiniteVectors(IndexProblem):
    """Vectors holding NaN or infinity: a build refuses to write them."""


class DiskFull(IndexProblem):
    """Not enough free space for a build, found before writing or while writing."""


class IndexUnwritable(IndexProblem):
    """The index folder cannot be written: permission denied, read-only, or
    another error of the operating system while a build writes."""


class ModelLoadError(QAError):
    """An encoder model cannot be loaded."""

    exit_code = 4


class BadQuestion(QAError):
    """A question that cannot be asked (empty, too long, not text)."""

    exit_code = 2
