"""The project's own error types: everything a user can cause derives from MlicError."""


class MlicError(Exception):
    """Base class of every error mlic raises on purpose."""


class CodingError(MlicError):
    """A bitstream cannot be decoded: truncated, corrupted or not made by this coder."""


class TableError(MlicError):
    """Entropy-coding tables are missing or invalid (call ``update()`` first)."""


class DesyncError(CodingError):
    """The decoder's probability model drifted from the encoder's: symbols no longer match."""


class OutputError(MlicError):
    """An output file cannot be written: it exists (and overwriting was not asked for), or its
    folder refuses it."""
