"""Report views, one module per suite; importing this package registers them in :data:`VIEWS`.

To add a suite's report, write ``views/<suite>.py`` that registers a :class:`SuiteView` (see
``views/clean.py`` for the smallest one) and import it below. A suite without a view is still
listed on the card (``views/generic.py``).
"""

from shiftlab.report.views import (  # noqa: F401  (registers)
    adapt,
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
from shiftlab.report.views.base import VIEWS, CardContext, SuiteView, ordered, register

__all__ = ["VIEWS", "CardContext", "SuiteView", "ordered", "register"]
