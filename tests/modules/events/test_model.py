"""The event's workflow and permission matrix, as pure rules (no database)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from app.errors import Forbidden, Invalid
from app.identity import Principal, Role
from app.modules.events.contracts import (
    CreateEvent,
    EventChanges,
    EventStatus,
    InsufficientRole,
    InvalidTransition,
)
from app.modules.events.model import Event, require_may_delete, require_reviewer

ORG = "org-1"
OWNER = "owner"
STATUSES = list(EventStatus)


def principal(role: Role, user_id: str = OWNER) -> Principal:
    return Principal(user_id=user_id, organization_id=ORG, role=role, email=f"{user_id}@x.io")


def event(status: EventStatus = EventStatus.DRAFT, owner_role: Role = Role.USER) -> Event:
    made = Event.create(
        CreateEvent(
            title="Planning",
            description="Plan the quarter.",
            start_date=datetime(2026, 9, 1, 9, tzinfo=UTC),
            end_date=datetime(2026, 9, 1, 12, tzinfo=UTC),
        ),
        by=principal(owner_role),
    )
    made.status = status
    return made


def outcome(action) -> str:
    """'ok', or the category of the error the action raised."""
    try:
        action()
    except InvalidTransition:
        return "409"
    except Forbidden:
        return "403"
    return "ok"


def test_create_starts_in_draft_owned_by_creator_in_their_org():
    made = event()

    assert made.state == EventStatus.DRAFT
    assert made.created_by_id == OWNER
    assert made.organization_id == ORG
    assert made.rejection_reason is None


def test_create_refuses_end_not_after_start():
    with pytest.raises(Invalid) as raised:
        Event.create(
            CreateEvent(
                title="Planning",
                description="Plan the quarter.",
                start_date=datetime(2026, 9, 1, 9, tzinfo=UTC),
                end_date=datetime(2026, 9, 1, 9, tzinfo=UTC),
            ),
            by=principal(Role.USER),
        )
    assert raised.value.message == "End date must be after start date"


# submit: creator only (any role), DRAFT only
SUBMIT = {
    (EventStatus.DRAFT, True): "ok",
    (EventStatus.DRAFT, False): "403",
    (EventStatus.SUBMITTED, True): "409",
    (EventStatus.APPROVED, True): "409",
    (EventStatus.REJECTED, True): "409",
    (EventStatus.SUBMITTED, False): "403",
    (EventStatus.APPROVED, False): "403",
    (EventStatus.REJECTED, False): "403",
}


@pytest.mark.parametrize("role", list(Role))
@pytest.mark.parametrize(("status", "is_creator"), list(SUBMIT))
def test_submit_matrix(role, status, is_creator):
    target = event(status)
    caller = principal(role, OWNER if is_creator else "someone-else")

    assert outcome(lambda: target.submit(by=caller)) == SUBMIT[(status, is_creator)]
    if SUBMIT[(status, is_creator)] == "ok":
        assert target.state == EventStatus.SUBMITTED
    else:
        assert target.state == status


# approve / reject: MODERATOR and ADMIN, SUBMITTED only; USER never
REVIEW = {
    (Role.USER, s): "403" for s in STATUSES
} | {
    (r, s): ("ok" if s == EventStatus.SUBMITTED else "409")
    for r in (Role.MODERATOR, Role.ADMIN)
    for s in STATUSES
}  # fmt: skip


@pytest.mark.parametrize(("role", "status"), list(REVIEW))
def test_approve_matrix(role, status):
    target = event(status)

    assert outcome(lambda: target.approve(by=principal(role, "reviewer"))) == REVIEW[(role, status)]
    expected = EventStatus.APPROVED if REVIEW[(role, status)] == "ok" else status
    assert target.state == expected


@pytest.mark.parametrize(("role", "status"), list(REVIEW))
def test_reject_matrix(role, status):
    target = event(status)
    reviewer = principal(role, "reviewer")

    assert (
        outcome(lambda: target.reject(by=reviewer, reason="Not now, sorry."))
        == REVIEW[(role, status)]
    )
    if REVIEW[(role, status)] == "ok":
        assert target.state == EventStatus.REJECTED
        assert target.rejection_reason == "Not now, sorry."
    else:
        assert target.state == status
        assert target.rejection_reason is None


def test_transition_messages_name_the_current_status():
    with pytest.raises(InvalidTransition) as raised:
        event(EventStatus.APPROVED).submit(by=principal(Role.USER))

    assert raised.value.message == (
        "Cannot submit event with status APPROVED. Only DRAFT events can be submitted."
    )


def test_role_checks_before_lookup():
    with pytest.raises(InsufficientRole):
        require_reviewer(principal(Role.USER), "approve")
    with pytest.raises(InsufficientRole) as raised:
        require_may_delete(principal(Role.MODERATOR))
    assert raised.value.message == "Moderators cannot delete events"
    require_reviewer(principal(Role.MODERATOR), "approve")
    require_may_delete(principal(Role.ADMIN))
    require_may_delete(principal(Role.USER))


# update: USER own DRAFT only; MODERATOR, ADMIN any status. visible: USER own only.
def _update_expected(role: Role, is_owner: bool, status: EventStatus) -> str:
    table = {
        Role.USER: "ok" if is_owner and status == EventStatus.DRAFT else "403",
        Role.MODERATOR: "ok",
        Role.ADMIN: "ok",
    }
    return table[role]


@pytest.mark.parametrize("role", list(Role))
@pytest.mark.parametrize("is_owner", [True, False])
@pytest.mark.parametrize("status", STATUSES)
def test_update_matrix_never_changes_status(role, is_owner, status):
    target = event(status)
    caller = principal(role, OWNER if is_owner else "someone-else")

    result = outcome(lambda: target.update(EventChanges(title="New title"), by=caller))

    assert result == _update_expected(role, is_owner, status)
    assert target.state == status
    assert target.title == ("New title" if result == "ok" else "Planning")


@pytest.mark.parametrize("role", list(Role))
@pytest.mark.parametrize("is_owner", [True, False])
@pytest.mark.parametrize("status", STATUSES)
def test_delete_matrix(role, is_owner, status):
    target = event(status)
    caller = principal(role, OWNER if is_owner else "someone-else")
    expected = {
        Role.USER: "ok" if is_owner and status == EventStatus.DRAFT else "403",
        Role.MODERATOR: "403",
        Role.ADMIN: "ok",
    }[role]

    assert outcome(lambda: target.ensure_deletable_by(caller)) == expected


@pytest.mark.parametrize("role", list(Role))
@pytest.mark.parametrize("is_owner", [True, False])
def test_visibility_matrix(role, is_owner):
    target = event()
    caller = principal(role, OWNER if is_owner else "someone-else")
    expected = "403" if role == Role.USER and not is_owner else "ok"

    assert outcome(lambda: target.ensure_visible_to(caller)) == expected


def test_update_validates_merged_dates_and_changes_nothing_on_failure():
    target = event()

    with pytest.raises(Invalid):
        target.update(
            EventChanges(end_date=datetime(2026, 9, 1, 8, tzinfo=UTC)), by=principal(Role.USER)
        )

    assert target.end_date == datetime(2026, 9, 1, 12, tzinfo=UTC)


def test_rejected_is_terminal():
    target = event(EventStatus.SUBMITTED)
    target.reject(by=principal(Role.MODERATOR, "mod"), reason="Not this time.")

    for attempt in (
        lambda: target.submit(by=principal(Role.USER)),
        lambda: target.approve(by=principal(Role.ADMIN, "adm")),
        lambda: target.reject(by=principal(Role.ADMIN, "adm"), reason="Again, no."),
    ):
        assert outcome(attempt) == "409"
    assert target.state == EventStatus.REJECTED
