"""How a workflow is declared, and the settings the engine runs it with.

A business workflow is declared once, as a :class:`WorkflowSpec`, and registered under
its name in :data:`REGISTRY`; the daemon starts a runner for each enabled one::

    REGISTRY.register(WorkflowSpec(
        name="milestone_to_invoice",
        triggers=(MilestoneCompleted,),
        category="billing",
        run=milestone_to_invoice,
    ))

This package imports nothing from ``daemon``: :meth:`WorkflowSettings.from_config` and
:func:`exception_owners` read the daemon's config structs by attribute.
"""

from __future__ import annotations

import math
import random
from collections.abc import Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, get_args

from actors.messages import Envelope, Event, Money, event_tag

if TYPE_CHECKING:
    from .context import RunContext

Category = Literal["contract", "project", "time", "billing", "master_data", "mapping"]
"""Exception categories; each has an owner in ``[governance.owners]``."""

CATEGORIES: frozenset[str] = frozenset(get_args(Category))

UNASSIGNED = "unassigned"
"""The owner of an exception whose category has no owner configured (never silent)."""


@dataclass(frozen=True, kw_only=True)
class WorkflowSpec:
    """One durable workflow: what triggers it and the code that runs for each trigger.

    ``triggers`` are event classes or their tags. A batching workflow gets one run per
    group of up to ``max_batch`` pending events of one key; others one run per event.
    ``category`` is the exception category of failures the code does not classify itself
    (``ctx.fail`` names its own). ``amount_at_risk`` states the money a failed run puts at
    risk, from its trigger envelopes, for the exception queue.
    """

    name: str
    triggers: tuple[type[Event] | str, ...]
    run: Callable[[RunContext], Awaitable[None]]
    category: Category
    batching: bool = False
    amount_at_risk: Callable[[tuple[Envelope, ...]], Money | None] | None = None
    trigger_types: frozenset[str] = field(init=False)

    def __post_init__(self) -> None:
        if not self.name or not self.triggers:
            raise ValueError("a workflow needs a name and at least one trigger")
        if self.category not in CATEGORIES:
            raise ValueError(f"workflow {self.name}: unknown category {self.category!r}")
        types = frozenset(t if isinstance(t, str) else event_tag(t) for t in self.triggers)
        object.__setattr__(self, "trigger_types", types)


class Registry(Mapping[str, WorkflowSpec]):
    """Workflow specs by name; the seven business workflows register themselves here."""

    def __init__(self) -> None:
        self._specs: dict[str, WorkflowSpec] = {}

    def register(self, spec: WorkflowSpec) -> WorkflowSpec:
        """Add ``spec``; a second spec under the same name is a bug and raises."""
        if spec.name in self._specs and self._specs[spec.name] is not spec:
            raise ValueError(f"workflow {spec.name!r} is registered twice")
        self._specs[spec.name] = spec
        return spec

    def __getitem__(self, name: str) -> WorkflowSpec:
        return self._specs[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._specs)

    def __len__(self) -> int:
        return len(self._specs)


REGISTRY = Registry()
"""Every workflow pssync implements, by name."""


@dataclass(frozen=True, kw_only=True)
class BackoffPolicy:
    """Delay before retry ``n`` (1-based): ``initial_s * multiplier**(n-1)`` capped at
    ``max_s``, spread by ±``jitter_fraction``, never below the vendor's Retry-After."""

    initial_s: float = 1.0
    max_s: float = 300.0
    multiplier: float = 2.0
    jitter_fraction: float = 0.1

    def delay_s(
        self, failures: int, *, retry_after_s: float | None = None, rng: random.Random | None = None
    ) -> float:
        """The wait after the ``failures``-th consecutive retryable failure."""
        exponent = max(failures - 1, 0)
        # Cap before multiplying out: multiplier**exponent overflows long before it matters.
        if self.multiplier > 1 and exponent > math.log(
            self.max_s / self.initial_s, self.multiplier
        ):
            delay = self.max_s
        else:
            delay = min(self.max_s, self.initial_s * self.multiplier**exponent)
        if self.jitter_fraction:
            delay *= 1 + self.jitter_fraction * (2 * (rng or random).random() - 1)
        if retry_after_s is not None:
            delay = max(delay, retry_after_s)
        return delay


@dataclass(frozen=True, kw_only=True)
class WorkflowSettings:
    """What ``[workflows.<name>]`` says about running one workflow, plus the lease.

    ``lease_s`` bounds how long a crashed process's runs stay unclaimable; a live runner
    renews every ``lease_s / 3``.
    """

    enabled: bool = True
    width: int = 8
    max_attempts: int = 5
    backoff: BackoffPolicy = BackoffPolicy()
    high_water_mark: int = 10_000
    max_batch: int = 500
    lease_s: float = 60.0

    def __post_init__(self) -> None:
        if self.width < 1 or self.max_attempts < 1 or self.max_batch < 1 or self.lease_s <= 0:
            raise ValueError("width, max_attempts, max_batch and lease_s must be positive")

    @classmethod
    def from_config(cls, config: Any, *, lease_s: float = 60.0) -> WorkflowSettings:
        """From a ``daemon.config.WorkflowConfig`` (read by attribute)."""
        backoff = config.backoff
        return cls(
            enabled=config.enabled,
            width=config.width,
            max_attempts=config.max_attempts,
            backoff=BackoffPolicy(
                initial_s=backoff.initial_s,
                max_s=backoff.max_s,
                multiplier=backoff.multiplier,
                jitter_fraction=backoff.jitter_fraction,
            ),
            high_water_mark=config.high_water_mark,
            max_batch=config.max_batch,
            lease_s=lease_s,
        )


def exception_owners(owners: Any) -> dict[str, str]:
    """Category → owner from ``daemon.config.ExceptionOwners`` (read by attribute)."""
    return {category: getattr(owners, category) for category in sorted(CATEGORIES)}
