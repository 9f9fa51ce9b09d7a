"""The toolkit's own exception types (the bottom floor: nothing here imports from `vae`)."""

from __future__ import annotations


class ConfigError(ValueError):
    """A config key or value that is not allowed. The message names the key and the allowed values."""


class RunDirError(ValueError):
    """The output directory cannot be used as asked (holds another run, or has nothing to resume)."""


class NonFiniteError(RuntimeError):
    """Training met a NaN or Inf loss or gradient (with train.on_nonfinite='stop')."""
