"""Typed identities of stored results (design contract 5): what a row *is*.

A result is keyed by (model fingerprint, :class:`DatasetIdentity`, :class:`TaskIdentity`, seed).
Each kind of cell has its own frozen dataclass (a corruption cell, an attack point, an OOD pair, ...);
:func:`encode` and :func:`decode` in this module are the only code that turns identities into key
strings and back, and :meth:`TaskIdentity.columns` gives the store its structured columns. Every
other module (suites, store, report, app, CLI) works with the typed values.

Adding a kind of cell: a frozen dataclass deriving from :class:`TaskIdentity`, decorated with
``@identity_kind("name")``; its fields are str, int, float, bool, ``X | None`` of those, or
``tuple[tuple[str, float], ...]`` (budget overrides), and it says which suite it belongs to.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar, TypeVar
from urllib.parse import quote, unquote

from shiftlab.core.errors import UserError

TABLES: tuple[str, ...] = ("cifar", "tiny", "imagenet")
"""Corruption parameter tables: CIFAR-10-C (32 px), Tiny-ImageNet-C (64 px), ImageNet-C (224 px)."""


def table_for_size(height: int, width: int) -> str:
    """The parameter table an image size picks: max(H, W) ≤ 32 → cifar, ≤ 64 → tiny, else imagenet."""
    side = max(height, width)
    return "cifar" if side <= 32 else "tiny" if side <= 64 else "imagenet"


def check_table(table: str) -> str:
    if table not in TABLES:
        raise UserError(f"unknown corruption parameter table {table!r}; use one of {', '.join(TABLES)}")
    return table


# ---------------------------------------------------------------------------------------------
# datasets


@dataclass(frozen=True, slots=True)
class DatasetIdentity:
    """What data a row was computed on: registry name, split, limit and a content fingerprint.

    ``content`` is the sha256 (hex) of the decoded images and labels of exactly the evaluated images,
    so two folders, two CIFAR copies or two preprocessings never share rows. An empty ``content``
    marks a row migrated from a store written before fingerprints existed: it is shown, never reused.
    """

    name: str
    split: str
    limit: int | None
    content: str
    size: int

    def key(self) -> str:
        limit = "all" if self.limit is None else str(self.limit)
        return "/".join((quote(self.name, safe=""), self.split, limit, self.content or "unknown"))

    @property
    def label(self) -> str:
        """How people read it: ``fashion-mnist[:200]`` (with the split when it is not the test split)."""
        text = self.name if self.limit is None else f"{self.name}[:{self.limit}]"
        return text if self.split == "test" else f"{text} ({self.split})"

    @property
    def short_content(self) -> str:
        return self.content[:12] if self.content else "unknown"

    @classmethod
    def from_key(cls, key: str, size: int = 0) -> DatasetIdentity:
        try:
            name, split, limit, content = key.split("/")
        except ValueError:
            raise ValueError(f"not a dataset key: {key!r}") from None
        return cls(unquote(name), split, None if limit == "all" else int(limit),
                   "" if content == "unknown" else content, size)


# ---------------------------------------------------------------------------------------------
# tasks


@dataclass(frozen=True, slots=True)
class Columns:
    """The structured store columns of an identity (None where a column does not apply)."""

    suite: str
    kind: str
    subject: str | None = None
    variant: str | None = None
    severity: int | None = None
    table: str | None = None
    norm: str | None = None
    eps: float | None = None
    is_summary: bool = False


class TaskIdentity:
    """Base of every task identity (subclasses are frozen dataclasses registered with ``identity_kind``)."""

    kind: ClassVar[str] = ""
    suite_name: ClassVar[str] = ""

    @property
    def suite(self) -> str:
        return self.suite_name

    def key(self) -> str:
        """The canonical key string (the store's unique column)."""
        return encode(self)

    def columns(self) -> Columns:
        return Columns(self.suite, self.kind)

    def label(self) -> str:
        """A short human-readable name for tables and plots."""
        return self.key()


_KINDS: dict[str, type[TaskIdentity]] = {}
IdentityT = TypeVar("IdentityT", bound=type[TaskIdentity])


def identity_kind(kind: str, suite: str) -> Callable[[IdentityT], IdentityT]:
    """Register a task identity class under ``kind`` (a duplicate raises)."""

    def decorator(cls: IdentityT) -> IdentityT:
        if kind in _KINDS:
            raise ValueError(f"task identity kind {kind!r} is already registered")
        cls.kind, cls.suite_name = kind, suite
        _KINDS[kind] = cls
        return cls

    return decorator


def identity_kinds() -> dict[str, type[TaskIdentity]]:
    return dict(_KINDS)


# ---- field codecs (one per field type) ----

NONE = "-"


def _enc_float(v: float) -> str:
    if not math.isfinite(v):
        raise ValueError(f"identity fields must be finite, got {v}")
    return repr(float(v))


def _enc_budgets(v: tuple[tuple[str, float], ...]) -> str:
    return ",".join(f"{quote(k, safe='')}={_enc_float(float(x)) if isinstance(x, float) else int(x)}"
                    for k, x in sorted(v)) or NONE


def _dec_budgets(text: str) -> tuple[tuple[str, float], ...]:
    if text == NONE:
        return ()
    out = []
    for item in text.split(","):
        k, _, v = item.partition("=")
        out.append((unquote(k), float(v) if any(c in v for c in ".eEn") else int(v)))
    return tuple(out)


_CODECS: dict[str, tuple[Callable[[Any], str], Callable[[str], Any]]] = {
    "str": (lambda v: quote(v, safe="") or "%00", lambda s: "" if s == "%00" else unquote(s)),
    "int": (lambda v: str(int(v)), int),
    "float": (_enc_float, float),
    "bool": (lambda v: "1" if v else "0", lambda s: s == "1"),
    "tuple[tuple[str, float], ...]": (_enc_budgets, _dec_budgets),
}


def _codec(annotation: str) -> tuple[Callable[[Any], str], Callable[[str], Any], bool]:
    text = annotation.replace(" ", "").replace(",", ", ")
    optional = text.endswith("|None")
    base = text.removesuffix("|None")
    if base not in _CODECS:
        raise TypeError(f"identity field type {annotation!r} has no codec")
    enc, dec = _CODECS[base]
    return enc, dec, optional


def _fields(cls: type[TaskIdentity]) -> list[tuple[str, Callable[[Any], str], Callable[[str], Any], bool]]:
    out = []
    for f in dataclasses.fields(cls):  # type: ignore[arg-type]
        annotation = f.type if isinstance(f.type, str) else getattr(f.type, "__name__", None) or str(f.type)
        enc, dec, optional = _codec(str(annotation))
        out.append((f.name, enc, dec, optional))
    return out


def encode(identity: TaskIdentity) -> str:
    """``kind/field1/field2/...``: every field, in declaration order, each by its type's codec."""
    parts = [identity.kind]
    for name, enc, _, optional in _fields(type(identity)):
        value = getattr(identity, name)
        if value is None:
            if not optional:
                raise ValueError(f"{identity.kind}.{name} may not be None")
            parts.append(NONE)
        else:
            parts.append(enc(value))
    return "/".join(parts)


@dataclass(frozen=True, slots=True)
class Unregistered(TaskIdentity):
    """A stored row whose kind no loaded module registers (a plugin's kind read without the plugin):
    shown with its raw key, never written."""

    raw: str
    of: str

    @property
    def suite(self) -> str:
        return self.of

    def key(self) -> str:
        return self.raw


def decode_stored(key: str, suite: str) -> TaskIdentity:
    """A stored row's identity; a kind no loaded module registers becomes :class:`Unregistered`."""
    try:
        return decode(key)
    except ValueError:
        return Unregistered(key, suite)


def decode(key: str) -> TaskIdentity:
    """The identity a key encodes; a malformed key raises ValueError."""
    kind, *parts = key.split("/")
    cls = _KINDS.get(kind)
    if cls is None:
        raise ValueError(f"unknown task identity kind {kind!r} in key {key!r}")
    fields = _fields(cls)
    if len(parts) != len(fields):
        raise ValueError(f"key {key!r} has {len(parts)} fields, {kind} has {len(fields)}")
    values = {name: (None if optional and text == NONE else dec(text))
              for (name, _, dec, optional), text in zip(fields, parts, strict=True)}
    return cls(**values)


def eps_display(eps: float) -> str:
    """"8/255" when eps is a whole number of 1/255 steps (and not a short decimal), else "0.1"."""
    k = eps * 255
    if abs(k - round(k)) < 1e-6 and round(k) != 255 and abs(eps - round(eps, 3)) > 1e-9:
        return f"{round(k)}/255"
    return f"{eps:g}"


@identity_kind("clean", suite="clean")
@dataclass(frozen=True, slots=True)
class CleanCell(TaskIdentity):
    """Accuracy, NLL, Brier and ECE on the unshifted test set."""

    def label(self) -> str:
        return "clean"


@identity_kind("corruption", suite="corruptions")
@dataclass(frozen=True, slots=True)
class CorruptionCell(TaskIdentity):
    """One corruption at one severity with one parameter table (Hendrycks & Dietterich 2019)."""

    corruption: str
    severity: int
    table: str

    def columns(self) -> Columns:
        return Columns(self.suite, self.kind, subject=self.corruption, severity=self.severity, table=self.table)

    def label(self) -> str:
        return f"{self.corruption} s{self.severity} ({self.table})"


@identity_kind("attack", suite="adversarial")
@dataclass(frozen=True, slots=True)
class AttackPoint(TaskIdentity):
    """One attack (or ensemble) at one norm and budget; ``budgets`` overrides the attack's own
    (the large-eps sanity run uses fewer steps)."""

    attack: str
    norm: str
    eps: float
    budgets: tuple[tuple[str, float], ...] = ()

    def columns(self) -> Columns:
        return Columns(self.suite, self.kind, subject=self.attack, norm=self.norm, eps=self.eps,
                       variant=_enc_budgets(self.budgets) if self.budgets else None)

    def label(self) -> str:
        extra = "".join(f" {k}={v:g}" for k, v in self.budgets)
        return f"{self.attack} {self.norm} ε={eps_display(self.eps)}{extra}"


class _OnShift:
    """An identity on the clean test set (corruption, severity and table all None) or on one corruption
    cell's images (all three given)."""

    corruption: str | None
    severity: int | None
    table: str | None

    def _check_shift(self, what: str) -> None:
        given = [v is None for v in (self.corruption, self.severity, self.table)]
        if any(given) and not all(given):
            raise ValueError(f"{what} is either clean or a full (corruption, severity, table)")

    @property
    def is_clean(self) -> bool:
        return self.corruption is None

    def shift(self) -> CorruptionCell | None:
        if self.corruption is None or self.severity is None or self.table is None:
            return None
        return CorruptionCell(self.corruption, self.severity, self.table)


@identity_kind("calibration", suite="calibration")
@dataclass(frozen=True, slots=True)
class CalibrationCell(_OnShift, TaskIdentity):
    """Calibration metrics on the clean test set (all fields None) or on one corruption cell."""

    corruption: str | None = None
    severity: int | None = None
    table: str | None = None

    def __post_init__(self) -> None:
        self._check_shift("a calibration cell")

    def columns(self) -> Columns:
        return Columns(self.suite, self.kind, subject=self.corruption or "clean", severity=self.severity,
                       table=self.table)

    def label(self) -> str:
        cell = self.shift()
        return "clean" if cell is None else cell.label()


@identity_kind("ood", suite="ood")
@dataclass(frozen=True, slots=True)
class OODPair(TaskIdentity):
    """One detector against one out-of-distribution set."""

    ood_set: str
    detector: str

    def columns(self) -> Columns:
        return Columns(self.suite, self.kind, subject=self.ood_set, variant=self.detector)

    def label(self) -> str:
        return f"{self.ood_set} / {self.detector}"


@identity_kind("summary", suite="")
@dataclass(frozen=True, slots=True)
class Summary(TaskIdentity):
    """A suite's aggregate over its stored rows (one per suite, or per parameter table)."""

    of: str
    table: str | None = None

    @property
    def suite(self) -> str:
        return self.of

    def columns(self) -> Columns:
        return Columns(self.of, self.kind, table=self.table, is_summary=True)

    def label(self) -> str:
        return f"{self.of} summary" + (f" ({self.table})" if self.table else "")


ADAPT_MODES: tuple[str, ...] = ("online", "episodic")
"""Online: the adapted state carries over from batch to batch; episodic: reset before every batch."""


@dataclass(frozen=True, slots=True)
class AdaptSetting:
    """A test-time adaptation setting: the adapter, every argument (defaults included), the batch size,
    the mode and the order of the batches (online: "index", ascending test-set index; episodic: None).
    Adaptation legitimately depends on the batch (its size, its images and, online, the batches before
    it), so all of these identify its results; single-image adapters have batch size 1."""

    adapter: str
    args: tuple[tuple[str, float], ...]
    batch_size: int
    mode: str
    order: str | None

    def __post_init__(self) -> None:
        if self.mode not in ADAPT_MODES:
            raise ValueError(f"adaptation mode {self.mode!r} is not one of {', '.join(ADAPT_MODES)}")
        if (self.mode == "online") != (self.order is not None):
            raise ValueError("online adaptation states the order of its batches; episodic adaptation has none")
        if self.batch_size < 1:
            raise ValueError(f"adaptation batch size must be positive, got {self.batch_size}")

    def fields(self) -> tuple[str, tuple[tuple[str, float], ...], int, str, str | None]:
        """The setting's fields in the order the adapted identities list them after their own."""
        return self.adapter, self.args, self.batch_size, self.mode, self.order

    def label(self) -> str:
        """``tent lr=0.001 steps=1, online (index order), batch 128``."""
        args = "".join(f" {k}={v:g}" for k, v in self.args)
        order = f" ({self.order} order)" if self.order else ""
        return f"{self.adapter}{args}, {self.mode}{order}, batch {self.batch_size}"


class _Adapted:
    """The setting fields shared by the adapted identities."""

    adapter: str
    args: tuple[tuple[str, float], ...]
    batch_size: int
    mode: str
    order: str | None

    def setting(self) -> AdaptSetting:
        return AdaptSetting(self.adapter, self.args, self.batch_size, self.mode, self.order)

    def __post_init__(self) -> None:
        self.setting()  # validates the setting fields


@identity_kind("adapted", suite="")
@dataclass(frozen=True, slots=True)
class AdaptedCell(_Adapted, _OnShift, TaskIdentity):
    """The clean test set (corruption, severity and table None) or one corruption cell, predicted under
    test-time adaptation (``shiftlab.adapt``) in the suite ``of`` (corruptions, calibration, or natural for
    its in-distribution accuracy), next to that suite's unadapted row; the setting fields are those of
    :class:`AdaptSetting`."""

    of: str
    corruption: str | None
    severity: int | None
    table: str | None
    adapter: str
    args: tuple[tuple[str, float], ...]
    batch_size: int
    mode: str
    order: str | None

    def __post_init__(self) -> None:
        self._check_shift("an adapted cell")
        if not self.of:
            raise ValueError("an adapted cell names its suite")
        self.setting()  # validates the setting fields

    @property
    def suite(self) -> str:
        return self.of

    def columns(self) -> Columns:
        return Columns(self.of, self.kind, subject=self.corruption or "clean", variant=self.adapter,
                       severity=self.severity, table=self.table)

    def label(self) -> str:
        cell = self.shift()
        return f"{'clean' if cell is None else cell.label()}, adapted: {self.setting().label()}"


@identity_kind("adapted-summary", suite="")
@dataclass(frozen=True, slots=True)
class AdaptedSummary(_Adapted, TaskIdentity):
    """A suite's aggregate over its adapted cells of one setting and parameter table (the suite's own
    :class:`Summary` keeps aggregating its unadapted cells)."""

    of: str
    table: str | None
    adapter: str
    args: tuple[tuple[str, float], ...]
    batch_size: int
    mode: str
    order: str | None

    @property
    def suite(self) -> str:
        return self.of

    def columns(self) -> Columns:
        return Columns(self.of, self.kind, variant=self.adapter, table=self.table, is_summary=True)

    def label(self) -> str:
        return f"{self.of} summary" + (f" ({self.table})" if self.table else "") + f", adapted: {self.setting().label()}"


SPATIAL_MODES: tuple[str, ...] = ("random", "worst-of-k", "grid")
"""Engstrom et al. 2019's evaluations: one random transform per image, the worst of k random ones, the grid."""


@identity_kind("spatial", suite="spatial")
@dataclass(frozen=True, slots=True)
class SpatialCell(TaskIdentity):
    """Rotation × translation (Engstrom et al. 2019, arXiv:1712.02779) within ±``max_rotation`` degrees and
    ±``max_translation`` pixels at 32 px (scaled to the image side), evaluated in one ``mode``: "random"
    (one random transform per image; k, rotations and translations None), "worst-of-k" (correct only
    under all ``k`` random transforms) or "grid" (``rotations`` angles × ``translations``² shifts)."""

    mode: str
    max_rotation: float
    max_translation: float
    k: int | None = None
    rotations: int | None = None
    translations: int | None = None

    def __post_init__(self) -> None:
        if self.mode not in SPATIAL_MODES:
            raise ValueError(f"spatial mode {self.mode!r} is not one of {', '.join(SPATIAL_MODES)}")
        if not (self.max_rotation >= 0 and self.max_translation >= 0):
            raise ValueError(f"spatial limits must be non-negative, got {self}")
        needed = {"random": (False, False, False), "worst-of-k": (True, False, False), "grid": (False, True, True)}
        given = (self.k, self.rotations, self.translations)
        if any(need != (v is not None) for need, v in zip(needed[self.mode], given, strict=True)) or \
                any(v is not None and v < 1 for v in given):
            raise ValueError(f"a {self.mode} spatial cell needs exactly its own positive sizes, got {self}")

    def columns(self) -> Columns:
        return Columns(self.suite, self.kind, subject=self.mode,
                       variant=f"rot={self.max_rotation:g} trans={self.max_translation:g}")

    def label(self) -> str:
        what = {"random": "random", "worst-of-k": f"worst-of-{self.k}",
                "grid": f"grid {self.rotations}×{self.translations}×{self.translations}"}[self.mode]
        return f"{what} ±{self.max_rotation:g}° ±{self.max_translation:g} px@32"


@identity_kind("translation", suite="translation")
@dataclass(frozen=True, slots=True)
class TranslationCell(TaskIdentity):
    """The image shrunk by ``scale`` on a canvas of the input's size (Azulay & Weiss 2019, arXiv:1805.12177)
    and moved ``distance`` pixels (L∞, the 8 compass directions) from the centre, the rest filled by
    ``fill`` ("zero" or "reflect"); accuracy against the shift (Kauderer-Abrams 2017, Biscione & Bowers 2021)."""

    distance: int
    scale: float
    fill: str

    def __post_init__(self) -> None:
        if self.distance < 0 or not 0 < self.scale <= 1 or self.fill not in ("zero", "reflect"):
            raise ValueError(f"a translation cell needs distance >= 0, scale in (0, 1] and fill zero|reflect, got {self}")

    def columns(self) -> Columns:
        return Columns(self.suite, self.kind, subject="canvas",
                       variant=f"d={self.distance} scale={self.scale:g} fill={self.fill}")

    def label(self) -> str:
        return f"shift {self.distance} px (scale {self.scale:g}, {self.fill} fill)"


@identity_kind("fourier", suite="fourier")
@dataclass(frozen=True, slots=True)
class FourierCell(TaskIdentity):
    """The Fourier heat map (Yin et al. 2019, arXiv:1906.08988): error under x + r·v·U_{i,j} for every basis
    frequency (i, j) that is a multiple of ``stride``, with L2 norm ``norm`` = r."""

    norm: float
    stride: int

    def __post_init__(self) -> None:
        if not (self.norm >= 0 and self.stride >= 1):
            raise ValueError(f"a Fourier cell needs norm >= 0 and stride >= 1, got {self}")

    def columns(self) -> Columns:
        return Columns(self.suite, self.kind, subject="fourier-basis", variant=f"r={self.norm:g} stride={self.stride}")

    def label(self) -> str:
        return f"Fourier heat map r={self.norm:g}" + (f" stride {self.stride}" if self.stride > 1 else "")


@identity_kind("certify", suite="certify")
@dataclass(frozen=True, slots=True)
class CertifyCell(_OnShift, TaskIdentity):
    """Randomized-smoothing certification (Cohen et al. 2019, arXiv:1902.02918) at noise level ``sigma``
    with ``n0`` selection and ``n`` estimation samples at failure probability ``alpha``, on the clean test
    set (corruption, severity and table None) or on one corruption cell's images."""

    sigma: float
    n: int
    n0: int
    alpha: float
    corruption: str | None = None
    severity: int | None = None
    table: str | None = None

    def __post_init__(self) -> None:
        self._check_shift("a certify cell")
        if not (self.sigma > 0 and self.n >= 1 and self.n0 >= 1 and 0 < self.alpha < 1):
            raise ValueError(f"a certify cell needs sigma > 0, n, n0 >= 1 and alpha in (0, 1), got {self}")

    def columns(self) -> Columns:
        return Columns(self.suite, self.kind, subject=self.corruption or "clean", variant=f"sigma={self.sigma:g}",
                       severity=self.severity, table=self.table, norm="l2")

    def label(self) -> str:
        cell = self.shift()
        where = "clean" if cell is None else cell.label()
        return f"σ={self.sigma:g} {where}, n={self.n} n0={self.n0} α={self.alpha:g}"


@identity_kind("stability", suite="stability")
@dataclass(frozen=True, slots=True)
class StabilityCell(TaskIdentity):
    """One perturbation sequence of ImageNet-P / CIFAR-10-P (Hendrycks & Dietterich 2019, arXiv:1903.12261):
    how often the prediction flips along its frames (flip probability) and how far the top-5 ranking moves."""

    sequence: str

    def columns(self) -> Columns:
        return Columns(self.suite, self.kind, subject=self.sequence)

    def label(self) -> str:
        return f"{self.sequence} sequence"


@identity_kind("natural", suite="natural")
@dataclass(frozen=True, slots=True)
class NaturalShiftCell(TaskIdentity):
    """Accuracy on a natural-shift test set with the evaluated data's classes (Taori et al. 2020,
    arXiv:2007.00644): its registry name and the content fingerprint of exactly the images evaluated, so
    two copies or two limits of a set never share rows."""

    shifted: str
    content: str

    def columns(self) -> Columns:
        return Columns(self.suite, self.kind, subject=self.shifted, variant=self.content[:12])

    def label(self) -> str:
        return f"{self.shifted} ({self.content[:12]})"


@identity_kind("adapted-natural", suite="natural")
@dataclass(frozen=True, slots=True)
class AdaptedNaturalCell(_Adapted, TaskIdentity):
    """A natural-shift test set (:class:`NaturalShiftCell`'s name and content) predicted under test-time
    adaptation, next to its unadapted row; the setting fields are those of :class:`AdaptSetting`."""

    shifted: str
    content: str
    adapter: str
    args: tuple[tuple[str, float], ...]
    batch_size: int
    mode: str
    order: str | None

    def unadapted(self) -> NaturalShiftCell:
        return NaturalShiftCell(self.shifted, self.content)

    def columns(self) -> Columns:
        return Columns(self.suite, self.kind, subject=self.shifted, variant=self.adapter)

    def label(self) -> str:
        return f"{self.unadapted().label()}, adapted: {self.setting().label()}"


# ---------------------------------------------------------------------------------------------
# keys of stores written before typed identities (schema 1); used only by the store's migration


def decode_v1(key: str, params: dict[str, Any], image_size: tuple[int, int],
              summary_table: str | None = None) -> TaskIdentity:
    """The identity of a schema-1 row from its key string, its params and the model's image size
    (``summary_table``: the table a schema-1 corruption summary's protocol artifact names)."""
    parts = key.split("/")
    default = table_for_size(*image_size)
    if parts[-1] == "summary" and len(parts) == 2:
        per_table = parts[0] in ("corruptions", "calibration")
        return Summary(parts[0], (summary_table or default) if per_table else None)
    if key == "clean":
        return CleanCell()
    if parts[0] == "corruptions" and len(parts) == 3:
        severity, _, suffix = parts[2].partition("@")
        return CorruptionCell(parts[1], int(severity), str(params.get("table") or suffix or default))
    if parts[0] == "calibration" and len(parts) == 2 and parts[1] == "clean":
        return CalibrationCell()
    if parts[0] == "calibration" and len(parts) == 3:
        return CalibrationCell(parts[1], int(parts[2]), str(params.get("table") or default))
    if parts[0] == "adversarial" and len(parts) == 4:
        budgets = tuple(sorted((k, v) for k, v in (("steps", 20),) if params.get("large_eps_check")))
        return AttackPoint(parts[1], parts[2], float(params.get("eps", parts[3])), budgets)
    if parts[0] == "ood" and len(parts) >= 3:
        return OODPair("/".join(parts[1:-1]), parts[-1])
    raise ValueError(f"cannot read schema-1 task key {key!r}")
