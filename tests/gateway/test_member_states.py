"""The edge's view of each member's current role and standing: asked of the auth module once
per member, kept a few seconds, shared by a burst of requests, and forgotten at a change."""

from __future__ import annotations

import asyncio
from typing import Any, cast

import pytest

from app.bus.bus import Bus, Policy
from app.gateway.security import MemberStates
from app.identity import Principal, Role
from app.modules.auth.contracts import DeactivatedToken, MemberState

ADA = Principal(user_id="u-1", organization_id="o-1", role=Role.MODERATOR, email="ada@acme.com")


class AuthModule:
    """What the bus would answer for `auth.memberState`, and how often it was asked."""

    def __init__(self, state: MemberState) -> None:
        self.state = state
        self.asked = 0
        self.answer = asyncio.Event()
        self.answer.set()

    async def send(self, pattern: Any, payload: Any, **_: Any) -> MemberState:
        self.asked += 1
        await self.answer.wait()
        return self.state


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def states(module: AuthModule, clock: Clock | None = None) -> MemberStates:
    return MemberStates(cast(Bus, module), Policy(), clock=clock or Clock())


async def test_a_burst_of_one_members_requests_asks_once_and_all_act_with_the_current_role():
    module = AuthModule(MemberState(role=Role.USER, active=True))
    module.answer.clear()
    members = states(module)

    burst = [asyncio.create_task(members.current(ADA)) for _ in range(10)]
    await asyncio.sleep(0)  # every request is waiting for the one answer
    module.answer.set()
    principals = await asyncio.gather(*burst)

    assert module.asked == 1
    assert {p.role for p in principals} == {Role.USER}  # the token said MODERATOR


async def test_the_answer_is_kept_a_while_then_asked_again():
    module = AuthModule(MemberState(role=Role.MODERATOR, active=True))
    clock = Clock()
    members = states(module, clock)

    first = await members.current(ADA)
    clock.now += 4.9
    await members.current(ADA)
    asked_within = module.asked
    clock.now += 0.2
    module.state = MemberState(role=Role.ADMIN, active=True)
    later = await members.current(ADA)

    assert first is ADA  # unchanged role: the same principal, nothing built
    assert asked_within == 1
    assert (module.asked, later.role) == (2, Role.ADMIN)


async def test_an_answer_from_before_a_change_is_not_kept_once_the_change_is_known():
    module = AuthModule(MemberState(role=Role.MODERATOR, active=True))
    module.answer.clear()
    members = states(module)

    before = asyncio.create_task(members.current(ADA))
    await asyncio.sleep(0)
    members.forget(ADA.user_id)  # this gateway demoted Ada meanwhile
    module.answer.set()
    await before
    module.state = MemberState(role=Role.USER, active=True)
    after = await members.current(ADA)

    assert module.asked == 2
    assert after.role == Role.USER


async def test_a_deactivated_member_is_refused_every_time():
    members = states(AuthModule(MemberState(role=Role.MODERATOR, active=False)))

    for _ in range(2):
        with pytest.raises(DeactivatedToken):
            await members.current(ADA)
