"""Run as ``python -m tests.inject.apps.servepkg``."""
