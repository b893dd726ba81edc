"""HTTP -> auth commands -> views. Nothing else happens here."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, Response, get, post
from litestar.params import JSONBody

from app.gateway.conditional import LOCATION
from app.gateway.dependencies import gateway_of, principal_of
from app.gateway.idempotency import IdempotencyKey, replied
from app.gateway.problems import problem_responses
from app.gateway.ratelimit import client_of
from app.gateway.security import AUTHENTICATED, BEARER_SCHEME
from app.modules.auth.contracts import (
    GET_ME,
    LOG_IN,
    SIGN_UP,
    GetMe,
    LogIn,
    LoginView,
    MeView,
    SignUp,
    SignUpView,
)


class AuthController(Controller):
    path = "/auth"
    tags = ["auth"]

    @post(
        "/signup",
        operation_id="signUp",
        status_code=201,
        summary="Create an account",
        security=[],
        responses=problem_responses(404, 409, 413, 415, 422),
    )
    async def sign_up(
        self,
        request: Request[Any, Any, Any],
        data: JSONBody[SignUp],
        idempotency_key: IdempotencyKey = None,
    ) -> Response[SignUpView]:
        """Join an organization (`organizationId`) as USER, or found one (`organizationName`)."""
        gateway = gateway_of(request)
        async with gateway.limits.password_check(client_of(request.scope)):
            outcome = await gateway.bus.send_for_outcome(
                SIGN_UP.pattern,
                data,
                idempotency_key=idempotency_key,
                policy=gateway.policies.signup,
            )
        view: SignUpView = outcome.result
        return replied(outcome, 201, {LOCATION: f"/organization/members/{view.user.id}"})

    @post(
        "/login",
        operation_id="logIn",
        status_code=200,
        summary="Log in",
        security=[],
        responses=problem_responses(401, 413, 415),
    )
    async def log_in(
        self,
        request: Request[Any, Any, Any],
        data: JSONBody[LogIn],
    ) -> LoginView:
        """After too many failed logins for one email from one client, answers 429."""
        gateway = gateway_of(request)
        client = client_of(request.scope)
        async with (
            gateway.limits.login_attempt(data.email, client),
            gateway.limits.password_check(client),
        ):
            view: LoginView = await gateway.bus.send(
                LOG_IN.pattern, data, policy=gateway.policies.login
            )
        return view

    @get(
        "/me",
        operation_id="getMe",
        opt={AUTHENTICATED: True},
        summary="The current user and organization",
        security=[{BEARER_SCHEME: []}],
        responses=problem_responses(401),
    )
    async def me(self, request: Request[Any, Any, Any]) -> MeView:
        gateway = gateway_of(request)
        view: MeView = await gateway.bus.send(
            GET_ME.pattern,
            GetMe(),
            principal=principal_of(request),
            policy=gateway.policies.me,
        )
        return view
