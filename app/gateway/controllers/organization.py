"""HTTP -> the auth module's member commands -> views: the organization's admin console. Every
route is the caller's own organization; the rules (who may, the last ADMIN) live in the module."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from litestar import Controller, Request, Response, get, patch, post
from litestar.params import FromPath, FromQuery, JSONBody, QueryParameter

from app.bus.contracts import Action, Command
from app.gateway.conditional import ETAG, IfMatch, allowed_versions, etag
from app.gateway.dependencies import gateway_of, principal_of
from app.gateway.idempotency import IdempotencyKey, replied
from app.gateway.problems import problem_responses
from app.gateway.security import AUTHENTICATED, BEARER_SCHEME, MemberStates
from app.gateway.validation import QUERY_OPT, Limit, Order, Page
from app.identity import Role
from app.modules.audit.contracts import LIST_AUDIT, AuditPage, ListAudit
from app.modules.auth.contracts import (
    CHANGE_ROLE,
    DEACTIVATE_MEMBER,
    FIND_MEMBER,
    GET_ORGANIZATION,
    LIST_MEMBERS,
    REACTIVATE_MEMBER,
    ChangeRole,
    DeactivateMember,
    FindMember,
    GetOrganization,
    ListMembers,
    MemberPage,
    MemberSortField,
    MemberView,
    OrganizationDetails,
    ReactivateMember,
    RoleChange,
)


class OrganizationController(Controller):
    path = "/organization"
    tags = ["organization"]
    opt = {AUTHENTICATED: True}
    security = [{BEARER_SCHEME: []}]

    @get(
        "/",
        operation_id="getOrganization",
        summary="The caller's organization",
        responses=problem_responses(401),
    )
    async def organization(self, request: Request[Any, Any, Any]) -> OrganizationDetails:
        gateway = gateway_of(request)
        found: OrganizationDetails = await gateway.bus.send(
            GET_ORGANIZATION.pattern,
            GetOrganization(),
            principal=principal_of(request),
            policy=gateway.policies.read_one,
        )
        return found

    @get(
        "/members",
        operation_id="listMembers",
        opt={QUERY_OPT: ListMembers},
        summary="The organization's members, filtered, sorted and paged (MODERATOR, ADMIN)",
        responses=problem_responses(401, 403),
    )
    async def members(
        self,
        request: Request[Any, Any, Any],
        page: Page = 1,
        limit: Limit = 10,
        sort_by: Annotated[MemberSortField, QueryParameter(name="sortBy")] = "createdAt",
        sort_order: Order = "asc",
        role: FromQuery[Role | None] = None,
        active: FromQuery[bool | None] = None,
        search: Annotated[
            str | None,
            QueryParameter(max_length=200, description="Substring of the name or email"),
        ] = None,
    ) -> MemberPage:
        query = ListMembers(
            page=page,
            limit=limit,
            sort_by=sort_by,
            sort_order=sort_order,
            role=role,
            active=active,
            search=search,
        )
        gateway = gateway_of(request)
        found: MemberPage = await gateway.bus.send(
            LIST_MEMBERS.pattern,
            query,
            principal=principal_of(request),
            policy=gateway.policies.list,
        )
        return found

    @get(
        "/audit",
        operation_id="listAudit",
        opt={QUERY_OPT: ListAudit},
        summary="The organization's audit log, newest first, filtered and paged (ADMIN)",
        responses=problem_responses(401, 403),
    )
    async def audit(
        self,
        request: Request[Any, Any, Any],
        page: Page = 1,
        limit: Limit = 10,
        action: FromQuery[Action | None] = None,
        actor_id: Annotated[
            str | None, QueryParameter(name="actorId", min_length=1, max_length=80)
        ] = None,
        subject_id: Annotated[
            str | None, QueryParameter(name="subjectId", min_length=1, max_length=36)
        ] = None,
        since: Annotated[
            datetime | None,
            QueryParameter(name="from", description="Inclusive lower bound on `at`"),
        ] = None,
        until: Annotated[
            datetime | None,
            QueryParameter(name="to", description="Inclusive upper bound on `at`"),
        ] = None,
    ) -> AuditPage:
        """Fed by the modules' notifications (transactional outbox, at-least-once delivery,
        idempotent consumer): each committed change appears exactly once, usually within a
        second."""
        query = ListAudit(
            page=page,
            limit=limit,
            action=action,
            actor_id=actor_id,
            subject_id=subject_id,
            from_=since,
            to=until,
        )
        gateway = gateway_of(request)
        found: AuditPage = await gateway.bus.send(
            LIST_AUDIT.pattern,
            query,
            principal=principal_of(request),
            policy=gateway.policies.list,
        )
        return found

    @get(
        "/members/{user_id:str}",
        operation_id="getMember",
        summary="One member (MODERATOR, ADMIN, or the member themself)",
        responses=problem_responses(401, 403, 404),
    )
    async def member(
        self, request: Request[Any, Any, Any], user_id: FromPath[str]
    ) -> Response[MemberView]:
        gateway = gateway_of(request)
        found: MemberView = await gateway.bus.send(
            FIND_MEMBER.pattern,
            FindMember(user_id=user_id),
            principal=principal_of(request),
            policy=gateway.policies.read_one,
        )
        return Response(found, headers={ETAG: etag(found.version)})

    @patch(
        "/members/{user_id:str}",
        operation_id="changeMemberRole",
        summary="Change a member's role (ADMIN)",
        responses=problem_responses(401, 403, 404, 409, 412, 413, 415, 422),
    )
    async def change_role(
        self,
        request: Request[Any, Any, Any],
        user_id: FromPath[str],
        data: JSONBody[RoleChange],
        idempotency_key: IdempotencyKey = None,
        if_match: IfMatch = None,
    ) -> Response[MemberView]:
        versions = allowed_versions(if_match)
        command = ChangeRole(user_id=user_id, role=data.role, if_match=versions)
        return await _change(request, CHANGE_ROLE, command, user_id, idempotency_key)

    @post(
        "/members/{user_id:str}/deactivate",
        operation_id="deactivateMember",
        status_code=200,
        summary="Lock a member out: no login, their tokens stop working (ADMIN)",
        responses=problem_responses(401, 403, 404, 409, 412, 422),
    )
    async def deactivate(
        self,
        request: Request[Any, Any, Any],
        user_id: FromPath[str],
        idempotency_key: IdempotencyKey = None,
        if_match: IfMatch = None,
    ) -> Response[MemberView]:
        command = DeactivateMember(user_id=user_id, if_match=allowed_versions(if_match))
        return await _change(request, DEACTIVATE_MEMBER, command, user_id, idempotency_key)

    @post(
        "/members/{user_id:str}/reactivate",
        operation_id="reactivateMember",
        status_code=200,
        summary="Let a deactivated member back in (ADMIN)",
        responses=problem_responses(401, 403, 404, 409, 412, 422),
    )
    async def reactivate(
        self,
        request: Request[Any, Any, Any],
        user_id: FromPath[str],
        idempotency_key: IdempotencyKey = None,
        if_match: IfMatch = None,
    ) -> Response[MemberView]:
        command = ReactivateMember(user_id=user_id, if_match=allowed_versions(if_match))
        return await _change(request, REACTIVATE_MEMBER, command, user_id, idempotency_key)


async def _change(
    request: Request[Any, Any, Any],
    command: Command,
    payload: object,
    user_id: str,
    idempotency_key: str | None,
) -> Response[Any]:
    """A change of a member, after which this gateway asks the auth module about them again at
    their next request (other gateways within `MEMBER_STATE_SECONDS`)."""
    gateway = gateway_of(request)
    outcome = await gateway.bus.send_for_outcome(
        command.pattern,
        payload,
        principal=principal_of(request),
        idempotency_key=idempotency_key,
        policy=gateway.policies.write,
    )
    members: MemberStates = request.app.state.member_states
    members.forget(user_id)
    view: MemberView = outcome.result
    return replied(outcome, 200, {ETAG: etag(view.version)})
