"""Registered evaluation suites; importing this package registers them all."""

from shiftlab.evaluate.suites import adversarial, calibration, clean, corruptions, ood  # noqa: F401
