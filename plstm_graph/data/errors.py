"""Errors raised by the dataset loaders."""


class DatasetNotFoundError(FileNotFoundError):
    """A dataset is not on disk and cannot be downloaded; the message says how to get it."""


class DatasetFileError(ValueError):
    """A dataset file exists but cannot be read (corrupt, truncated or inconsistent); the
    message names the file."""
