"""The package version (also stored with every result row)."""

__version__ = "0.2.0"
