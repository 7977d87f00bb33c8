"""Declarations and settings: the registry, backoff arithmetic, config translation."""

from __future__ import annotations

import random

import pytest

from actors.messages import TimeApproved
from actors.workflows import BackoffPolicy, Registry, WorkflowSettings, WorkflowSpec
from actors.workflows import exception_owners as owners_of
from daemon.config import Backoff, ExceptionOwners, WorkflowConfig

from .harness import POST_TIME, post_time


def test_triggers_are_event_classes_or_tags() -> None:
    spec = WorkflowSpec(
        name="w", triggers=(TimeApproved, "expense.approved"), run=post_time, category="time"
    )
    assert spec.trigger_types == {"time.approved", "expense.approved"}


def test_a_category_must_have_an_owner_table_entry() -> None:
    with pytest.raises(ValueError, match="unknown category"):
        WorkflowSpec(name="w", triggers=(TimeApproved,), run=post_time, category="sales")


def test_a_name_is_registered_once() -> None:
    registry = Registry()
    registry.register(POST_TIME)
    registry.register(POST_TIME)  # the same spec again (a module imported twice) is fine
    assert dict(registry) == {"post_time": POST_TIME}
    clash = WorkflowSpec(name="post_time", triggers=("x",), run=post_time, category="time")
    with pytest.raises(ValueError, match="registered twice"):
        registry.register(clash)


def test_backoff_grows_caps_and_honours_retry_after() -> None:
    policy = BackoffPolicy(initial_s=1.0, max_s=60.0, multiplier=2.0, jitter_fraction=0.0)
    assert [policy.delay_s(n) for n in range(1, 9)] == [1, 2, 4, 8, 16, 32, 60, 60]
    assert policy.delay_s(10_000) == 60.0  # no overflow on a long outage
    assert policy.delay_s(1, retry_after_s=30.0) == 30.0
    assert policy.delay_s(7, retry_after_s=30.0) == 60.0


def test_jitter_stays_within_its_fraction() -> None:
    policy = BackoffPolicy(initial_s=10.0, max_s=60.0, multiplier=2.0, jitter_fraction=0.1)
    rng = random.Random(7)
    delays = [policy.delay_s(1, rng=rng) for _ in range(200)]
    assert all(9.0 <= delay <= 11.0 for delay in delays)
    assert len(set(delays)) > 100


def test_settings_and_owners_from_the_daemon_config() -> None:
    config = WorkflowConfig(
        width=3,
        max_attempts=7,
        max_batch=50,
        high_water_mark=900,
        backoff=Backoff(initial_s=2.0, max_s=120.0, multiplier=3.0, jitter_fraction=0.0),
    )
    settings = WorkflowSettings.from_config(config, lease_s=90.0)
    assert settings == WorkflowSettings(
        width=3,
        max_attempts=7,
        max_batch=50,
        high_water_mark=900,
        lease_s=90.0,
        backoff=BackoffPolicy(initial_s=2.0, max_s=120.0, multiplier=3.0, jitter_fraction=0.0),
    )
    owners = ExceptionOwners(
        contract="c", project="p", time="t", billing="b", master_data="m", mapping="x"
    )
    assert owners_of(owners) == {
        "billing": "b",
        "contract": "c",
        "mapping": "x",
        "master_data": "m",
        "project": "p",
        "time": "t",
    }
