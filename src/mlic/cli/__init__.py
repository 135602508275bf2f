"""The ``mlic`` command."""
