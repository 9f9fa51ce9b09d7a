"""The toolkit's version (the bottom floor)."""

__version__ = "0.1.0"
