"""Post-hoc recalibration of a trained classifier's logits."""

from shiftlab.calibrate.temperature import TemperatureFit, fit_temperature, nll_at_temperature

__all__ = ["TemperatureFit", "fit_temperature", "nll_at_temperature"]
