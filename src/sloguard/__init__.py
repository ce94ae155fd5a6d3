"""sloguard: keep a Python web service inside its service level objectives."""

__version__ = "0.1.0"
