"""A suite is one bundle (design contract 7): its options (and the flags they declare), the tasks it
builds, the summaries it derives from its stored rows, and the name of its report view.

``SUITES`` registers them; ``shiftlab.evaluation.suites`` imports every built-in suite.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from shiftlab.core.identity import TaskIdentity
from shiftlab.core.registry import Registry
from shiftlab.evaluation.flags import Flag
from shiftlab.store import TaskRow

if TYPE_CHECKING:
    from shiftlab.evaluation.context import EvalContext

OptionsT = TypeVar("OptionsT")


@dataclass
class TaskResult:
    """What a task produces: scalar metrics (stored as numbers) and JSON artifacts (curves, bins)."""

    metrics: dict[str, float]
    artifacts: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Task:
    """One unit of work: its typed identity, the parameters that describe it exactly (stored with the
    row) and the function that computes it."""

    identity: TaskIdentity
    params: dict[str, Any]
    run: Callable[[EvalContext], TaskResult]


@dataclass(frozen=True)
class NoOptions:
    """The options of a suite that has none."""

    FLAGS: tuple[Flag, ...] = ()


@dataclass(frozen=True)
class Prerequisite:
    """Another model whose stored rows a suite's summary reads (the mCE or mFR baseline, the reference models
    of effective robustness): evaluated first, on the same data and seed, on ``suites`` with ``options``
    (tasks it already has in the store are reused), so the summary only reads the store."""

    checkpoint: str
    suites: tuple[str, ...]
    options: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Suite(Generic[OptionsT]):
    """A registered suite.

    Args:
        name: registry name (``--suite NAME``).
        description: one line for ``shiftlab list suites``.
        options: the suite's options dataclass; its ``FLAGS`` are the CLI options it declares.
        build: (context, options) -> tasks; validates what needs the data, before any work.
        summarize: (context, options, the suite's stored task rows) -> summary results, each stored
            under its :class:`~shiftlab.core.identity.Summary` identity (replacing an older one; an
            :class:`~shiftlab.core.identity.AdaptedSummary` per adaptation setting). A
            summary reads the store only: it never trains or loads another model.
        prerequisites: (options, the evaluated dataset's registry name) -> the other models the summary
            reads, evaluated first by ``shiftlab.evaluate`` (``app/evaluate.py``).
    """

    name: str
    description: str
    options: type[OptionsT]
    build: Callable[[EvalContext, OptionsT], list[Task]]
    summarize: Callable[[EvalContext, OptionsT, list[TaskRow]], Sequence[tuple[TaskIdentity, TaskResult]]] | None = None
    prerequisites: Callable[[OptionsT, str], Sequence[Prerequisite]] | None = None

    @property
    def flags(self) -> tuple[Flag, ...]:
        flags: tuple[Flag, ...] = getattr(self.options, "FLAGS", ())
        return flags


@dataclass(frozen=True, slots=True)
class SuiteMeta:
    """Registry metadata of a suite: the papers its protocol follows."""

    papers: tuple[str, ...] = ()


SUITES: Registry[Suite[Any], SuiteMeta] = Registry("suite")


def all_flags() -> dict[str, Flag]:
    """Every flag any registered suite declares (a name declared twice must be the same flag)."""
    out: dict[str, Flag] = {}
    for entry in SUITES.entries():
        for flag in entry.obj.flags:
            held = out.setdefault(flag.name, flag)
            if held is not flag:
                raise RuntimeError(f"suites declare two different flags named {flag.name!r}; share one Flag")
    return out


def suites_using(flag: str) -> list[str]:
    return [e.name for e in SUITES.entries() if any(f.name == flag for f in e.obj.flags)]
