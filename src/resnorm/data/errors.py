"""Errors about data that the CLI turns into one clear line."""


class DataError(RuntimeError):
    """A dataset is missing, corrupt, or needs a download that cannot happen now."""
