"""Adversarial attacks (FGSM, PGD, APGD-CE/T, FAB-T, Square) and AutoAttack-style ensembles.

Importing this package registers every attack in ``ATTACKS`` and every ensemble in ``ENSEMBLES``.
"""

from shiftlab.attacks import apgd, fab, fgsm, pgd, square  # noqa: F401
from shiftlab.attacks.base import ATTACKS, AttackMeta, assert_in_threat_set, attack_mode, run_attack
from shiftlab.attacks.ensemble import ENSEMBLES, EnsembleResult, ensemble_spec, run_ensemble
from shiftlab.attacks.sanity import SanityReport, check_model
from shiftlab.attacks.threat import Norm, NormOps, ThreatModel, norm_ops

__all__ = [
    "ATTACKS", "ENSEMBLES", "AttackMeta", "EnsembleResult", "Norm", "NormOps", "SanityReport", "ThreatModel",
    "assert_in_threat_set", "attack_mode", "check_model", "ensemble_spec", "norm_ops",
    "run_attack", "run_ensemble",
]
