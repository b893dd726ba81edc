"""Auth routes through the real HTTP app: signup, login, me, and every error API.md lists."""

from __future__ import annotations

import time

import httpx
import jwt
import pytest

from tests.conftest import ACME_ID, ADMIN_ID, PASSWORD, TEST_SECRET, login

Client = httpx.AsyncClient


def signup_body(**overrides: object) -> dict[str, object]:
    body: dict[str, object] = {
        "email": "New.Person@Example.com",
        "password": "Secret123!",
        "firstName": "New",
        "lastName": "Person",
        "organizationId": ACME_ID,
    }
    body.update(overrides)
    return body


async def test_signup_into_existing_org_makes_a_user_with_lowercased_email(client: Client):
    response = await client.post("/auth/signup", json=signup_body())

    assert response.status_code == 201
    body = response.json()
    assert set(body) == {"user", "accessToken"}
    assert body["user"]["email"] == "new.person@example.com"
    assert body["user"]["role"] == "USER"
    assert body["user"]["organizationId"] == ACME_ID
    assert set(body["user"]) == {
        "id", "email", "firstName", "lastName", "role", "organizationId", "createdAt"
    }  # fmt: skip
    me = await client.get("/auth/me", headers={"Authorization": f"Bearer {body['accessToken']}"})
    assert me.status_code == 200
    assert me.json()["organization"]["slug"] == "acme-corp"


async def test_signup_with_organization_name_creates_org_and_makes_its_admin(client: Client):
    response = await client.post(
        "/auth/signup",
        json=signup_body(organizationId=None, organizationName="Globex Industries"),
    )

    assert response.status_code == 201, response.text
    user = response.json()["user"]
    assert user["role"] == "ADMIN"
    assert user["organizationId"] != ACME_ID
    token = response.json()["accessToken"]
    me = (await client.get("/auth/me", headers={"Authorization": f"Bearer {token}"})).json()
    assert me["organization"] == {
        "id": user["organizationId"],
        "name": "Globex Industries",
        "slug": "globex-industries",
    }


async def test_signup_with_an_existing_org_slug_is_409(client: Client):
    response = await client.post(
        "/auth/signup", json=signup_body(organizationId=None, organizationName="Acme Corp")
    )

    assert response.status_code == 409
    assert response.json()["code"] == "ORGANIZATION_EXISTS"


async def test_signup_into_unknown_org_is_404(client: Client):
    response = await client.post("/auth/signup", json=signup_body(organizationId="nope"))

    assert response.status_code == 404
    assert response.json()["detail"] == "Organization not found"


async def test_signup_with_taken_email_in_any_case_is_409(client: Client):
    response = await client.post("/auth/signup", json=signup_body(email="ADMIN@acme.com"))

    assert response.status_code == 409
    assert response.json()["detail"] == "User with this email already exists"


@pytest.mark.parametrize(
    "org_fields",
    [{}, {"organizationId": ACME_ID, "organizationName": "Both Given"}],
    ids=["neither", "both"],
)
async def test_signup_needs_exactly_one_of_org_id_or_name(client: Client, org_fields):
    body = signup_body()
    del body["organizationId"]
    response = await client.post("/auth/signup", json={**body, **org_fields})

    assert response.status_code == 400
    assert response.json()["code"] == "VALIDATION_FAILED"
    assert response.json()["errors"][0]["field"] == "organizationId"


async def test_signup_cannot_choose_a_role(client: Client):
    response = await client.post("/auth/signup", json=signup_body(role="ADMIN"))

    assert response.status_code == 400
    assert {"field": "role", "message": "Unknown field 'role'"} in response.json()["errors"]


async def test_signup_reports_every_invalid_field_at_once(client: Client):
    response = await client.post(
        "/auth/signup",
        json=signup_body(email="not-an-email", password="short", firstName="A", lastName=""),
    )

    assert response.status_code == 400
    fields = {e["field"] for e in response.json()["errors"]}
    assert fields == {"email", "password", "firstName", "lastName"}


@pytest.mark.parametrize(
    "password",
    ["alllowercase1", "ALLUPPERCASE1", "NoDigitsOrSymbols", "Sh0rt!", "A1" + "a" * 71],
)
async def test_signup_rejects_weak_or_overlong_passwords(client: Client, password):
    response = await client.post("/auth/signup", json=signup_body(password=password))

    assert response.status_code == 400
    assert [e["field"] for e in response.json()["errors"]] == ["password"]


async def test_passwords_are_8_to_72_bytes_of_utf8(client: Client):
    """bcrypt reads 72 bytes: a sign-up takes exactly that much, as the schema says."""
    ascii_72 = "Aa1" + "a" * 69
    multibyte_72 = "Aa1" + "é" * 34 + "a"  # 38 characters, 72 bytes in UTF-8

    for n, password in enumerate([ascii_72, multibyte_72]):
        signup = await client.post(
            "/auth/signup", json=signup_body(email=f"long{n}@acme.com", password=password)
        )
        assert signup.status_code == 201, signup.text
        log_in = await client.post(
            "/auth/login", json={"email": f"long{n}@acme.com", "password": password}
        )
        assert log_in.status_code == 200


async def test_password_over_72_bytes_is_400_at_signup_and_401_at_login(client: Client):
    password = "Aa1" + "é" * 40  # 43 characters, 83 bytes in UTF-8
    signup = await client.post("/auth/signup", json=signup_body(password=password))
    log_in = await client.post(
        "/auth/login", json={"email": "admin@acme.com", "password": password}
    )
    too_many_characters = await client.post(
        "/auth/login", json={"email": "admin@acme.com", "password": "Aa1" + "a" * 70}
    )

    assert signup.status_code == 400
    assert "72 bytes" in signup.json()["errors"][0]["message"]
    assert log_in.status_code == 401  # no account has such a password
    assert log_in.json()["detail"] == "Invalid credentials"
    assert too_many_characters.status_code == 400  # the schema's maxLength: 72


async def test_login_returns_token_type_and_lifetime(client: Client):
    response = await client.post(
        "/auth/login", json={"email": "Admin@Acme.com", "password": PASSWORD}
    )

    assert response.status_code == 200
    body = response.json()
    assert body["tokenType"] == "Bearer"
    assert body["expiresIn"] == 3600
    assert body["user"]["role"] == "ADMIN"
    assert "passwordHash" not in body["user"] and "password" not in str(body["user"])
    claims = jwt.decode(body["accessToken"], TEST_SECRET, algorithms=["HS256"])
    assert set(claims) == {"sub", "email", "role", "organizationId", "iat", "exp", "jti"}
    assert claims["sub"] == ADMIN_ID and claims["organizationId"] == ACME_ID
    assert claims["exp"] - claims["iat"] == 3600


async def test_unknown_email_and_wrong_password_get_the_same_401(client: Client):
    unknown = await client.post(
        "/auth/login", json={"email": "nobody@acme.com", "password": PASSWORD}
    )
    wrong = await client.post(
        "/auth/login", json={"email": "admin@acme.com", "password": "Wrong123!"}
    )

    assert unknown.status_code == wrong.status_code == 401
    assert unknown.json()["detail"] == wrong.json()["detail"] == "Invalid credentials"
    assert unknown.json()["code"] == wrong.json()["code"]


async def test_me_returns_user_and_organization(client: Client):
    token = await login(client, "moderator@acme.com")
    response = await client.get("/auth/me", headers={"Authorization": f"Bearer {token}"})

    assert response.status_code == 200
    body = response.json()
    assert set(body) == {
        "id", "email", "firstName", "lastName", "role", "organizationId",
        "createdAt", "updatedAt", "organization",
    }  # fmt: skip
    assert body["role"] == "MODERATOR"
    assert body["organization"] == {"id": ACME_ID, "name": "Acme Corporation", "slug": "acme-corp"}


def _token(secret: str = TEST_SECRET, algorithm: str = "HS256", **claims: object) -> str:
    now = int(time.time())
    payload: dict[str, object] = {
        "sub": ADMIN_ID,
        "email": "admin@acme.com",
        "role": "ADMIN",
        "organizationId": ACME_ID,
        "iat": now,
        "exp": now + 600,
        "jti": "x",
    }
    payload.update(claims)
    payload = {k: v for k, v in payload.items() if v is not None}
    return jwt.encode(payload, secret, algorithm=algorithm)


def _unsigned(**claims: object) -> str:
    import base64
    import json

    def part(data: dict[str, object]) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()

    now = int(time.time())
    payload = {"sub": ADMIN_ID, "email": "a@b.c", "role": "ADMIN", "organizationId": ACME_ID,
               "iat": now, "exp": now + 600, "jti": "x", **claims}  # fmt: skip
    return f"{part({'alg': 'none', 'typ': 'JWT'})}.{part(payload)}."


@pytest.mark.parametrize(
    ("authorization", "code"),
    [
        (None, "AUTH_REQUIRED"),
        ("Basic dXNlcjpwYXNz", "INVALID_TOKEN"),
        ("Bearer ", "INVALID_TOKEN"),
        ("Bearer not.a.jwt", "INVALID_TOKEN"),
        (f"Bearer {_token(secret='another-secret-that-is-also-32-bytes-long!!')}", "INVALID_TOKEN"),
        (f"Bearer {_unsigned()}", "INVALID_TOKEN"),
        (f"Bearer {_token(exp=int(time.time()) - 10)}", "TOKEN_EXPIRED"),
        (f"Bearer {_token(exp=None)}", "INVALID_TOKEN"),
        (f"Bearer {_token(role='SUPERUSER')}", "INVALID_TOKEN"),
        (f"Bearer {_token(organizationId=12345)}", "INVALID_TOKEN"),
    ],
    ids=[
        "missing",
        "basic",
        "empty",
        "garbage",
        "other-key",
        "alg-none",
        "expired",
        "no-exp",
        "bad-role",
        "wrong-claim-type",
    ],
)
async def test_bad_tokens_are_401_with_correlation_id(client: Client, authorization, code):
    headers = {"X-Correlation-ID": "auth-check-1"}
    if authorization is not None:
        headers["Authorization"] = authorization
    me = await client.get("/auth/me", headers=headers)
    events = await client.get("/events", headers=headers)

    for response in (me, events):
        assert response.status_code == 401
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["code"] == code
        assert response.headers["x-correlation-id"] == "auth-check-1"
        assert response.json()["correlationId"] == "auth-check-1"


async def test_tampered_claims_are_401(client: Client):
    token = await login(client, "user@acme.com")
    header, _, signature = token.split(".")
    forged_payload = _token(role="ADMIN").split(".")[1]

    response = await client.get(
        "/events", headers={"Authorization": f"Bearer {header}.{forged_payload}.{signature}"}
    )

    assert response.status_code == 401


@pytest.mark.parametrize(
    ("names", "refused"),
    [
        ({"firstName": "  ", "lastName": "Person"}, ["firstName"]),
        ({"firstName": " A ", "lastName": "\u3000\u00a0B\t"}, ["firstName", "lastName"]),
    ],
)
async def test_names_are_trimmed_before_their_length_is_checked(client: Client, names, refused):
    response = await client.post("/auth/signup", json=signup_body(**names))

    assert response.status_code == 400
    assert [e["field"] for e in response.json()["errors"]] == refused


async def test_names_are_stored_trimmed(client: Client):
    response = await client.post(
        "/auth/signup",
        json=signup_body(
            firstName="  Ada ",
            lastName="\tLovelace\n",
            organizationId=None,
            organizationName="  Analytical Engines  ",
        ),
    )

    assert response.status_code == 201, response.text
    token = response.json()["accessToken"]
    me = (await client.get("/auth/me", headers={"Authorization": f"Bearer {token}"})).json()
    assert (me["firstName"], me["lastName"]) == ("Ada", "Lovelace")
    assert me["organization"]["name"] == "Analytical Engines"


async def test_an_organization_name_in_any_script_founds_an_organization(client: Client):
    first = await client.post(
        "/auth/signup",
        json=signup_body(
            email="tanaka@example.jp", organizationId=None, organizationName="株式会社"
        ),
    )
    again = await client.post(
        "/auth/signup",
        json=signup_body(email="sato@example.jp", organizationId=None, organizationName="株式会社"),
    )

    assert first.status_code == 201, first.text
    assert again.status_code == 409  # the same name, the same slug
