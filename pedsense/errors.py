"""Errors a user can fix. Each message names the problem and the fix.

The CLI prints them without a traceback; the dashboard shows them in the page.
"""


class PedsenseError(Exception):
    """Base class for problems the user can fix (bad input, missing data, wrong options)."""


class DataError(PedsenseError):
    """Missing, malformed or inconsistent data (annotations, clips, frames, datasets)."""


class AnnotationError(DataError):
    """An annotation file that cannot be parsed; the message names the file and line."""


class ConfigError(PedsenseError, ValueError):
    """An invalid parameter value."""


class DatasetChanged(ConfigError):
    """A resume would continue on other data than the run started on (confirm to go on)."""


class FileFormatError(PedsenseError):
    """A file that exists but cannot be parsed (a damaged run file); the message names it."""


class TrainingDiverged(PedsenseError):
    """The training loss (or the weights) stopped being finite; the message names epoch and batch."""


class DiskFull(PedsenseError):
    """No space left while writing (a run's files, a dataset build, frames); the message names
    the folder and how much to free."""


class ReadOnly(PedsenseError):
    """A write refused because the data home (or a run folder) is read-only; the message names
    the folder and how to make it writable."""


class SchedulerBusy(PedsenseError):
    """The data home's scheduler lock was not free within its deadline; the message names the
    process holding it and what to do."""
