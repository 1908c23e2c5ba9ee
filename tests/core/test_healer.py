"""Self-healing rules: when Hydra restarts a container, and when it must not."""

from __future__ import annotations

from dataclasses import replace

import pytest

from hydra_core.containers.healer import WINDOW_S, GiveUp, Heal, Healer, Refuse
from hydra_core.containers.models import ContainerInfo, HealingSettings

UNHEALTHY = ContainerInfo(name="web", id="a1", image="web:1", state="running", health="unhealthy")
CRASHED = ContainerInfo(name="job", id="b2", image="job:1", state="exited", exit_code=3)


class Clock:
    """A clock the test moves."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


def _healer(clock: Clock, **settings: object) -> Healer:
    return Healer(HealingSettings(**settings), backoff_s=30.0, clock=clock)


def test_unhealthy_restarted_after_n_consecutive_checks(clock: Clock) -> None:
    healer = _healer(clock, unhealthy_checks=3)
    assert healer.check(UNHEALTHY, stopped_on_purpose=False) is None
    assert healer.check(UNHEALTHY, stopped_on_purpose=False) is None
    decision = healer.check(UNHEALTHY, stopped_on_purpose=False)
    assert decision == Heal("unhealthy for 3 consecutive checks")


def test_a_healthy_check_resets_the_count(clock: Clock) -> None:
    healer = _healer(clock, unhealthy_checks=2)
    assert healer.check(UNHEALTHY, stopped_on_purpose=False) is None
    assert healer.check(replace(UNHEALTHY, health="healthy"), stopped_on_purpose=False) is None
    assert healer.check(UNHEALTHY, stopped_on_purpose=False) is None
    assert isinstance(healer.check(UNHEALTHY, stopped_on_purpose=False), Heal)


def test_crash_without_own_restart_policy_is_healed_at_once(clock: Clock) -> None:
    assert _healer(clock).check(CRASHED, stopped_on_purpose=False) == Heal("exited with code 3")


@pytest.mark.parametrize(
    ("container", "stopped_on_purpose"),
    [
        (replace(CRASHED, exit_code=0), False),  # finished its work
        (CRASHED, True),  # someone stopped it
        (replace(CRASHED, exit_code=143), False),  # SIGTERM: a stop we did not see
        (replace(CRASHED, exit_code=137), False),  # SIGKILL
        (replace(CRASHED, restart_policy="on-failure"), False),  # the engine restarts it
        (replace(CRASHED, restart_policy="always"), False),
        (replace(UNHEALTHY, health="starting"), False),
        (replace(UNHEALTHY, state="paused"), False),
    ],
)
def test_not_troubled(clock: Clock, container: ContainerInfo, stopped_on_purpose: bool) -> None:
    healer = _healer(clock, unhealthy_checks=1)
    assert healer.check(container, stopped_on_purpose=stopped_on_purpose) is None


def test_protected_is_never_restarted_and_said_once(clock: Clock) -> None:
    healer = _healer(clock, unhealthy_checks=1)
    protected = replace(UNHEALTHY, protected=True)
    decision = healer.check(protected, stopped_on_purpose=False)
    assert isinstance(decision, Refuse)
    assert "protected" in decision.reason
    for _ in range(5):
        assert healer.check(protected, stopped_on_purpose=False) is None


def test_budget_backoff_and_give_up(clock: Clock) -> None:
    healer = _healer(clock, max_restarts_per_hour=3)
    assert isinstance(healer.check(CRASHED, stopped_on_purpose=False), Heal)
    healer.restarted("job")
    # Backoff: 30 s after the first restart, 60 s after the second.
    assert healer.check(CRASHED, stopped_on_purpose=False) is None
    clock.now += 31
    assert isinstance(healer.check(CRASHED, stopped_on_purpose=False), Heal)
    healer.restarted("job")
    clock.now += 59
    assert healer.check(CRASHED, stopped_on_purpose=False) is None
    clock.now += 2
    assert isinstance(healer.check(CRASHED, stopped_on_purpose=False), Heal)
    healer.restarted("job")
    clock.now += 1000
    assert healer.check(CRASHED, stopped_on_purpose=False) == GiveUp(3, WINDOW_S)
    assert healer.check(CRASHED, stopped_on_purpose=False) is None  # said once
    # An hour after the first restart, the budget has room again.
    clock.now += WINDOW_S
    assert isinstance(healer.check(CRASHED, stopped_on_purpose=False), Heal)


def test_switched_off_does_nothing(clock: Clock) -> None:
    healer = _healer(clock, enabled=False, unhealthy_checks=1)
    assert healer.check(CRASHED, stopped_on_purpose=False) is None
    assert healer.check(UNHEALTHY, stopped_on_purpose=False) is None
