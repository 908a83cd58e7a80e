"""Workflows that compose training, evaluation and the report (the demo, the zoo); they reach the
terminal only through the presenter protocol of :mod:`shiftlab.app.presenter`."""
