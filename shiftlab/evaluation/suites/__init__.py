"""The built-in suites; importing this package registers them all."""

from shiftlab.evaluation.suites import (  # noqa: F401
    adversarial,
    calibration,
    certify,
    clean,
    corruptions,
    fourier,
    natural,
    ood,
    spatial,
    stability,
    translation,
)
