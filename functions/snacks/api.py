"""``snacks-api``: accounts and tokens, snacks, reactions, orders and statistics (seed 003).

Thin: parse (FastAPI/pydantic, constraints declared so OpenAPI shows them), authenticate,
call ``service``, render. Paths are the seed's; a trailing slash (``/snacks/auth/token/``, as
the seed writes them) is accepted on every route, as API Gateway routes both forms alike.

Authentication happens here (catalog routes have ``authorizer=None``): snacks issues its own
ES256 tokens (``tokens``) and verifies them with ``opsdeck.auth.verify`` and its own public keys;
every request then checks the account (resigned, token generation) in PostgreSQL.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from decimal import Decimal
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Path, Query, Request, Security
from fastapi.responses import JSONResponse, Response
from fastapi.security import HTTPBearer
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from opsdeck import auth, db
from opsdeck import cursor as cursor_codec
from opsdeck.api import Direct, DirectRequest, create_app, lambda_handler, problems
from opsdeck.errors import (
    Conflict,
    Forbidden,
    InvalidInput,
    MissingCredentials,
    NotFound,
    RateLimited,
    Unauthorized,
)
from opsdeck.lazy import lazy_import
from opsdeck.params import Cursor as CursorText

from . import domain

service = lazy_import("functions.snacks.service")
repository = lazy_import("functions.snacks.repository")
tokens = lazy_import("functions.snacks.tokens")

BASE = "/snacks"
UID = r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
EMAIL = (
    r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]{1,64}@"
    r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)+$"
)
#: text shown to people: no control characters, not blank (ASCII classes only: the document
#: and Python must read the pattern alike; ECMA and Python disagree on what ``\s`` is)
TEXT = r"^[^\x00-\x1f\x7f]*[^\x00-\x20\x7f][^\x00-\x1f\x7f]*$"
#: free text (may be empty): no control characters but tab and newline
FREE_TEXT = r"^[^\x00-\x08\x0b-\x1f\x7f]*$"
#: http(s), a host, no credentials, no whitespace (domain.check_web_url applies the same rule)
PORT = r"(?:[0-9]{1,4}|[1-5][0-9]{4}|6[0-4][0-9]{3}|65[0-4][0-9]{2}|655[0-2][0-9]|6553[0-5])"  # 0..65535
WEB_URL = rf"^[Hh][Tt][Tt][Pp][Ss]?://[A-Za-z0-9.-]+(?::{PORT})?(?:[/?#][^\x00-\x20\x7f]*)?$"
NO_STORE = {"cache-control": "no-store"}
MAX_LIMIT = 100


def _problems(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """The layer's ``problems()`` (one Problem schema, an example per type) for these statuses."""
    kinds: dict[int, Any] = {
        401: Unauthorized,
        403: Forbidden,
        404: NotFound,
        409: Conflict,
        422: InvalidInput,
        429: RateLimited,
    }
    return problems(*(kinds.get(status, status) for status in statuses))


bearer = HTTPBearer(auto_error=False, description="An access token from POST /snacks/auth/token")

# ----------------------------------------------------------------------- models

#: the uids the document's examples name (and the contract test's seed gives its rows, demo.contract)
EXAMPLE_SNACK_UID = "6f1c9a52-1f43-4d6e-9a57-1b2f0c3d4e5f"
EXAMPLE_ORDER_UID = "0b7e2d1c-5a4f-4e3b-8c2d-1a0f9e8d7c6b"
EXAMPLE_USER_UID = "3c2b1a09-8f7e-4d6c-9b5a-4f3e2d1c0b9a"
SnackUid = Annotated[str, Path(pattern=UID, description="uuid", examples=[EXAMPLE_SNACK_UID])]
OrderUid = Annotated[str, Path(pattern=UID, description="uuid", examples=[EXAMPLE_ORDER_UID])]
UserUid = Annotated[str, Path(pattern=UID, description="uuid", examples=[EXAMPLE_USER_UID])]


class SignUp(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"email": "mina@example.com", "password": "boatymcboatface", "name": "Mina"}]
        },
    )
    email: Annotated[str, Field(pattern=EMAIL, max_length=254)]
    password: Annotated[str, Field(min_length=8, max_length=256)]
    name: Annotated[str, Field(min_length=1, max_length=100, pattern=TEXT)]


class TokenRequest(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"username": "mina@example.com", "password": "boatymcboatface"}]}
    )
    username: Annotated[
        str, Field(min_length=1, max_length=254, pattern=TEXT, description="the account's email")
    ]
    password: Annotated[str, Field(min_length=1, max_length=256)]


class RefreshRequest(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"refresh": "eyJhbGciOiJFUzI1NiIsImtpZCI6..."}]}
    )
    refresh: Annotated[
        str,
        Field(
            min_length=1,
            max_length=4096,
            description="a refresh token this API issued (POST /snacks/auth/token); any other is 401",
            json_schema_extra={"x-opaque": True},
        ),
    ]


class Jwk(BaseModel):
    kty: str
    kid: str
    alg: str
    use: str
    crv: str | None = None
    x: str | None = None
    y: str | None = None
    n: str | None = None
    e: str | None = None


class Jwks(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "keys": [
                        {
                            "kty": "EC",
                            "crv": "P-256",
                            "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
                            "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0",
                            "kid": "2026-12",
                            "alg": "ES256",
                            "use": "sig",
                        }
                    ]
                }
            ]
        }
    )
    keys: list[Jwk]


class TokenPair(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "access": "eyJhbGciOiJFUzI1NiIsImtpZCI6IjIwMjYtMTIiLCJ0eXAiOiJKV1QifQ...",
                    "refresh": "eyJhbGciOiJFUzI1NiIsImtpZCI6IjIwMjYtMTIiLCJ0eXAiOiJKV1QifQ...",
                }
            ]
        }
    )

    access: str
    refresh: str


class UserView(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "uid": EXAMPLE_USER_UID,
                    "email": "mina@example.com",
                    "name": "Mina",
                    "role": "member",
                    "is_deleted": False,
                    "created_at": "2026-12-01T09:00:00Z",
                }
            ]
        }
    )

    uid: str
    email: str
    name: str
    role: Literal["member", "admin"]
    is_deleted: bool
    created_at: dt.datetime


class UserPage(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "items": [
                        {
                            "uid": EXAMPLE_USER_UID,
                            "email": "mina@example.com",
                            "name": "Mina",
                            "role": "member",
                            "is_deleted": False,
                            "created_at": "2026-12-01T09:00:00Z",
                        }
                    ],
                    "next_cursor": None,
                }
            ]
        }
    )

    items: list[UserView]
    next_cursor: str | None


#: a price as a decimal string (exact; no floats, no exponent): at most 12 digits and 2 decimals
Money = Annotated[str, Field(pattern=r"^[0-9]{1,12}(\.[0-9]{1,2})?$", examples=["4800.00"])]
Currency = Annotated[str, Field(pattern=r"^[A-Z]{3}$", examples=["KRW"])]


class NewSnack(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "name": "Choco Pie",
                    "purchase_url": "https://shop.example.com/choco-pie",
                    "image_url": "https://img.example.com/choco-pie.jpg",
                    "description": "12 pieces",
                    "currency": "KRW",
                    "price": "4800.00",
                }
            ]
        },
    )
    name: Annotated[str, Field(min_length=1, max_length=100, pattern=TEXT)]
    purchase_url: Annotated[str | None, Field(max_length=2048, pattern=WEB_URL)] = None
    image_url: Annotated[str | None, Field(max_length=2048, pattern=WEB_URL)] = None
    description: Annotated[str, Field(max_length=2000, pattern=FREE_TEXT)] = ""
    currency: Currency
    price: Money


class SnackInOrder(BaseModel):
    """A snack by name: the registered one with that name, else registered now."""

    model_config = ConfigDict(extra="forbid")
    name: Annotated[str, Field(min_length=1, max_length=100, pattern=TEXT)]
    purchase_url: Annotated[str | None, Field(max_length=2048, pattern=WEB_URL)] = None
    image_url: Annotated[str | None, Field(max_length=2048, pattern=WEB_URL)] = None
    description: Annotated[str, Field(max_length=2000, pattern=FREE_TEXT)] = ""
    currency: Currency | None = None
    price: Money | None = None


def _present(data: Any, *names: str) -> list[str]:
    """The ``names`` an object of the request carries; ``null`` for any of them is refused (the
    document types them without ``null``: absent is how one leaves them out)."""
    if not isinstance(data, dict):
        return []
    for name in names:
        if name in data and data[name] is None:
            raise ValueError(f"{name} is null: leave it out instead")
    return [n for n in names if n in data]


def _non_null(schema: dict[str, Any], *names: str) -> None:
    """``names`` in ``schema`` without their ``null`` branch (see ``_present``); no default."""
    for name in names:
        prop = schema["properties"][name]
        branches = [b for b in prop.pop("anyOf", []) if b.get("type") != "null"]
        if branches:
            prop.update(branches[0])
        prop.pop("default", None)


def _item_schema(schema: dict[str, Any]) -> None:
    _non_null(schema, "snack_uid", "snack")
    schema["oneOf"] = [{"required": ["snack_uid"]}, {"required": ["snack"]}]


class Item(BaseModel):
    """Exactly one of ``snack_uid`` (a registered snack) or ``snack`` (by name)."""

    model_config = ConfigDict(extra="forbid", json_schema_extra=_item_schema)
    snack_uid: Annotated[str | None, Field(pattern=UID)] = None
    snack: SnackInOrder | None = None
    quantity: Annotated[int, Field(ge=1, le=10000)]

    @model_validator(mode="before")
    @classmethod
    def _exactly_one(cls, data: Any) -> Any:
        if isinstance(data, dict) and len(_present(data, "snack_uid", "snack")) != 1:
            raise ValueError("each item names exactly one of snack_uid or snack")
        return data


class NewOrder(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "items": [
                        {"snack_uid": EXAMPLE_SNACK_UID, "quantity": 2},
                        {
                            "snack": {"name": "Honey Butter Chip", "currency": "KRW", "price": "1500"},
                            "quantity": 5,
                        },
                    ],
                    "note": "for the Friday meeting",
                }
            ]
        },
    )
    items: Annotated[list[Item], Field(min_length=1, max_length=100)]
    note: Annotated[str, Field(max_length=1000, pattern=FREE_TEXT)] = ""


def _day(value: Any) -> Any:
    """A day as the document's ``format: date`` states it (pydantic alone also takes ``0``)."""
    if isinstance(value, dt.date):
        return value
    if not isinstance(value, str) or not re.match(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$", value):
        raise ValueError("must be a day YYYY-MM-DD")
    return value


Day = Annotated[dt.date, BeforeValidator(_day)]
_CHANGE = ("status", "estimated_arrival")
_EDIT = ("items", "note")


def _order_update_schema(schema: dict[str, Any]) -> None:
    _non_null(schema, *_CHANGE, *_EDIT)
    arrival = sorted(domain.NEEDS_ARRIVAL)
    schema["oneOf"] = [
        {  # a status change to ordered / shipping: with the estimated arrival
            "required": ["status", "estimated_arrival"],
            "properties": {"status": {"enum": arrival}, "items": False, "note": False},
        },
        {  # any other status change: without it
            "required": ["status"],
            "properties": {
                "status": {"enum": [s for s in domain.STATUSES if s not in domain.NEEDS_ARRIVAL]},
                "estimated_arrival": False,
                "items": False,
                "note": False,
            },
        },
        {  # the owner's edit while created: items and/or note
            "minProperties": 1,
            "properties": {"status": False, "estimated_arrival": False},
        },
    ]
    schema["examples"] = [
        {"status": "ordered", "estimated_arrival": "2026-12-10"},
        {"note": "for the Friday meeting"},
    ]


class OrderUpdate(BaseModel):
    """An admin's status change (``status``, with ``estimated_arrival`` exactly on ordered and
    shipping), or the owner's edit of ``items`` / ``note`` while the order is created — one or
    the other (the document's ``oneOf``; the state-dependent rules are 409s)."""

    model_config = ConfigDict(extra="forbid", json_schema_extra=_order_update_schema)
    status: Literal["created", "approved", "ordered", "shipping", "completed", "canceled"] | None = None
    estimated_arrival: Day | None = None
    items: Annotated[list[Item] | None, Field(min_length=1, max_length=100)] = None
    note: Annotated[str | None, Field(max_length=1000, pattern=FREE_TEXT)] = None

    @model_validator(mode="before")
    @classmethod
    def _one_kind(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        change, edit = _present(data, *_CHANGE), _present(data, *_EDIT)
        if change and edit:
            raise ValueError("a status change carries no items or note; send them separately")
        if not change and not edit:
            raise ValueError("nothing to change: give status, items or note")
        if change and "status" not in change:
            raise ValueError("estimated_arrival goes with a status change to ordered or shipping")
        status = data.get("status")
        needs = isinstance(status, str) and status in domain.NEEDS_ARRIVAL
        if change and isinstance(status, str) and needs != ("estimated_arrival" in change):
            raise ValueError(
                f"estimated_arrival is required to move an order to {status}"
                if status in domain.NEEDS_ARRIVAL
                else "estimated_arrival is given only when moving an order to ordered or shipping"
            )
        return data


class ReactionRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"type": "like"}]})
    type: Literal["like", "hate"]


class ReactionView(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "snack_uid": EXAMPLE_SNACK_UID,
                    "my_reaction": "like",
                    "like_count": 8,
                    "hate_count": 3,
                }
            ]
        }
    )

    snack_uid: str
    my_reaction: Literal["like", "hate"] | None
    like_count: int
    hate_count: int


class SnackView(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "uid": EXAMPLE_SNACK_UID,
                    "name": "Choco Pie",
                    "purchase_url": "https://shop.example.com/choco-pie",
                    "image_url": None,
                    "image": None,
                    "description": "12 pieces",
                    "currency": "KRW",
                    "price": "4800.00",
                    "like_count": 7,
                    "hate_count": 3,
                    "like_ratio": 2.3333,
                    "my_reaction": "like",
                    "created_at": "2026-12-01T09:00:00Z",
                }
            ]
        }
    )

    uid: str
    name: str
    purchase_url: str | None
    image_url: str | None
    image: str | None = Field(description="the uploaded image (this API redirects to it), else image_url")
    description: str
    currency: str
    price: str
    like_count: int
    hate_count: int
    like_ratio: float | None = Field(description="likes / hates; null without hates")
    my_reaction: Literal["like", "hate"] | None = None
    created_at: dt.datetime


class SnackPage(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "items": [
                        {
                            "uid": EXAMPLE_SNACK_UID,
                            "name": "Choco Pie",
                            "purchase_url": "https://shop.example.com/choco-pie",
                            "image_url": None,
                            "image": None,
                            "description": "12 pieces",
                            "currency": "KRW",
                            "price": "4800.00",
                            "like_count": 7,
                            "hate_count": 3,
                            "like_ratio": 2.3333,
                            "my_reaction": "like",
                            "created_at": "2026-12-01T09:00:00Z",
                        }
                    ],
                    "next_cursor": None,
                }
            ]
        }
    )

    items: list[SnackView]
    next_cursor: str | None


class OrderItemView(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "snack_uid": EXAMPLE_SNACK_UID,
                    "name": "Choco Pie",
                    "quantity": 2,
                    "unit_price": "4800.00",
                    "currency": "KRW",
                    "purchase_url": "https://shop.example.com/choco-pie",
                    "image_url": None,
                    "description": "12 pieces",
                }
            ]
        }
    )

    snack_uid: str
    name: str
    quantity: int
    unit_price: str
    currency: str
    purchase_url: str | None
    image_url: str | None
    description: str


_ORDER_EXAMPLE: dict[str, Any] = {
    "uid": EXAMPLE_ORDER_UID,
    "status": "ordered",
    "estimated_arrival": "2026-12-10",
    "note": "",
    "user_uid": EXAMPLE_USER_UID,
    "user_name": "Mina",
    "items": [
        {
            "snack_uid": EXAMPLE_SNACK_UID,
            "name": "Choco Pie",
            "quantity": 2,
            "unit_price": "4800.00",
            "currency": "KRW",
            "purchase_url": "https://shop.example.com/choco-pie",
            "image_url": None,
            "description": "12 pieces",
        }
    ],
    "created_at": "2026-12-01T09:00:00Z",
    "updated_at": "2026-12-02T10:00:00Z",
    "status_changed_at": "2026-12-02T10:00:00Z",
}


class OrderView(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [_ORDER_EXAMPLE]})

    uid: str
    status: str
    estimated_arrival: dt.date | None
    note: str
    user_uid: str
    user_name: str
    items: list[OrderItemView]
    created_at: dt.datetime
    updated_at: dt.datetime
    status_changed_at: dt.datetime


class OrderPage(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "items": [
                        _ORDER_EXAMPLE,
                    ],
                    "next_cursor": None,
                }
            ]
        }
    )

    items: list[OrderView]
    next_cursor: str | None


class Statistics(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "period": {
                        "kind": "month",
                        "label": "2026-12",
                        "start": "2026-12-01T00:00:00+00:00",
                        "end": "2027-01-01T00:00:00+00:00",
                    },
                    "order_count": 1,
                    "orders_by_status": {"ordered": 1},
                    "snack_quantity": 2,
                    "amount": {"KRW": "9600.00"},
                    "by_currency": {"KRW": {"amount": "9600.00", "snack_quantity": 2}},
                    "snacks": [
                        {
                            "snack_uid": EXAMPLE_SNACK_UID,
                            "name": "Choco Pie",
                            "quantity": 2,
                            "orders": 1,
                            "currency": "KRW",
                        }
                    ],
                    "items": [
                        _ORDER_EXAMPLE,
                    ],
                    "next_cursor": None,
                }
            ]
        }
    )

    period: dict[str, str]
    order_count: int = Field(description="orders in the period, canceled ones excepted")
    orders_by_status: dict[str, int]
    snack_quantity: int
    amount: dict[str, str] = Field(description="sum of quantity x unit price per currency")
    by_currency: dict[str, dict[str, Any]]
    snacks: list[dict[str, Any]]
    items: list[OrderView] = Field(description="the period's orders (every status), newest first")
    next_cursor: str | None


# ---------------------------------------------------------------------- helpers


def _json(body: Any, status: int = 200) -> Response:
    """``body`` encoded once (datetimes as UTC ``…Z``, Decimals with two places)."""
    payload = json.dumps(body, default=_default, separators=(",", ":"), ensure_ascii=False).encode()
    return Response(payload, status_code=status, media_type="application/json", headers=NO_STORE)


def _default(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return f"{value:.2f}"
    raise TypeError(type(value).__name__)


def _source_ip(request: Request) -> str | None:
    event = request.scope.get("aws.event")
    if isinstance(event, dict):
        ip = ((event.get("requestContext") or {}).get("http") or {}).get("sourceIp")
        if ip:
            return str(ip)[:64]
    return request.client.host if request.client else None


def _principal(request: Request) -> auth.Principal:
    return _bearer_principal(request.headers.get("authorization", ""))


def _bearer_principal(authorization: str) -> auth.Principal:
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise MissingCredentials("missing bearer token")
    return auth.verify(token.strip(), tokens.provider("access"))


def _user(request: Request):
    principal = _principal(request)
    with db.transaction() as conn:
        return service.current_user(conn, principal)


def _user_view(row: dict) -> dict:
    return {k: row[k] for k in ("uid", "email", "name", "role", "is_deleted", "created_at")}


def _snack_view(row: dict) -> dict:
    likes, hates = row["like_count"], row["hate_count"]
    return {
        "uid": row["uid"],
        "name": row["name"],
        "purchase_url": row["purchase_url"],
        "image_url": row["image_url"],
        "image": f"{BASE}/snacks/{row['uid']}/image" if row.get("image_key") else row["image_url"],
        "description": row["description"],
        "currency": row["currency"],
        "price": row["price"],
        "like_count": likes,
        "hate_count": hates,
        "like_ratio": round(likes / hates, 4) if hates else None,
        "my_reaction": row.get("my_reaction"),
        "created_at": row["created_at"],
    }


def _order_view(row: dict) -> dict:
    return {k: v for k, v in row.items() if k not in ("id", "user_id")}


def _limit(limit: int | None, default: int = 50) -> int:
    return default if limit is None else limit


Limit = Annotated[int | None, Query(ge=1, le=MAX_LIMIT, description=f"1..{MAX_LIMIT} (default 50)")]
Cursor = Annotated[CursorText | None, Query(max_length=cursor_codec.MAX_LENGTH)]

# ----------------------------------------------------------------------- routes

accounts = APIRouter(prefix=BASE, tags=["accounts"])


@accounts.post(
    "/auth/signup",
    status_code=201,
    response_model=UserView,
    summary="Sign up with email (the login id), password and name",
    responses=_problems(400, 409, 422),
)
async def sign_up(body: SignUp) -> JSONResponse:
    row = service.sign_up(body.email, body.password, body.name)
    return _json(_user_view(row), 201)


@accounts.post(
    "/auth/token",
    response_model=TokenPair,
    summary="Sign in: access and refresh token",
    responses=_problems(400, 401, 422, 429),
)
async def token(request: Request, body: TokenRequest) -> JSONResponse:
    return _json(service.sign_in(body.username, body.password, _source_ip(request)))


@accounts.post(
    "/auth/token/refresh",
    response_model=TokenPair,
    summary="A new access token; the refresh token is spent and replaced (rotation)",
    responses=_problems(400, 401, 422),
)
async def refresh(body: RefreshRequest) -> JSONResponse:
    return _json(service.refresh(body.refresh))


@accounts.get(
    "/.well-known/jwks.json",
    response_model=Jwks,
    summary="The public keys that verify snacks tokens (JWK Set)",
)
async def jwks() -> JSONResponse:
    return JSONResponse(tokens.jwks(), headers={"cache-control": "public, max-age=300"})


@accounts.get(
    "/users/me",
    response_model=UserView,
    summary="The caller's account",
    responses=_problems(401),
    dependencies=[Security(bearer)],
)
async def me(request: Request) -> JSONResponse:
    user = _user(request)
    with db.transaction() as conn:
        return _json(_user_view(repository.user_by_uid(conn, user.uid)))


@accounts.delete(
    "/users/me",
    status_code=204,
    summary="Resign: the account is kept as deleted, every token ends, the email cannot sign up again",
    responses=_problems(401, 409),
    dependencies=[Security(bearer)],
)
async def resign(request: Request) -> Response:
    service.resign(_user(request))
    return Response(status_code=204, headers=NO_STORE)


@accounts.get(
    "/users",
    response_model=UserPage,
    summary="Every account (admins)",
    responses=_problems(401, 403, 422),
    dependencies=[Security(bearer)],
)
async def users(request: Request, limit: Limit = None, cursor: Cursor = None) -> JSONResponse:
    user = _user(request)
    service.require_admin(user)
    after = cursor_codec.decode(cursor, "u")
    if after is not None and not (len(after) == 1 and isinstance(after[0], int)):
        raise InvalidInput("cursor is malformed")
    size = _limit(limit)
    with db.transaction() as conn:
        rows = repository.list_users(conn, size + 1, after[0] if after else None)
    page = rows[:size]
    nxt = cursor_codec.encode("u", page[-1]["id"]) if len(rows) > size else None
    return _json({"items": [_user_view(r) for r in page], "next_cursor": nxt})


@accounts.post(
    "/users/{user_uid}/promote",
    response_model=UserView,
    summary="Make a member an admin (admins)",
    responses=_problems(401, 403, 404, 409, 422),
    dependencies=[Security(bearer)],
)
async def promote(request: Request, user_uid: UserUid) -> JSONResponse:
    return _json(_user_view(service.promote(_user(request), user_uid.lower())))


snacks = APIRouter(prefix=BASE, tags=["snacks"], dependencies=[Security(bearer)])


@snacks.get(
    "/snacks",
    response_model=SnackPage,
    summary="Snacks by like/hate ratio (no hates ranks first, no reactions counts as 1)",
    responses=_problems(401, 422),
)
async def list_snacks(request: Request, limit: Limit = None, cursor: Cursor = None) -> JSONResponse:
    principal = _principal(request)
    after = cursor_codec.decode(cursor, "s")
    if after is not None:
        try:
            neg_ratio, neg_likes, sid = float(after[0]), int(after[1]), int(after[2])
        except (ValueError, TypeError, IndexError):
            raise InvalidInput("cursor is malformed") from None
        after = (neg_ratio, neg_likes, sid)
    size = _limit(limit)
    service.check_access(principal)
    with db.transaction() as conn:
        user_id, rows = repository.snack_page(
            conn, principal.subject, principal.claims.get("gen"), size + 1, after
        )
    if user_id is None:
        raise Unauthorized("token revoked")
    page = rows[:size]
    nxt = None
    if len(rows) > size:
        last = page[-1]
        nxt = cursor_codec.encode("s", last["neg_ratio"], -last["like_count"], last["id"])
    items = [_snack_view(r) for r in service.with_counts(page)]
    return _json({"items": items, "next_cursor": nxt})


@snacks.post(
    "/snacks",
    status_code=201,
    response_model=SnackView,
    summary="Register a snack (its name is its identity)",
    responses=_problems(400, 401, 409, 422),
)
async def create_snack(request: Request, body: NewSnack) -> JSONResponse:
    user = _user(request)
    with db.transaction() as conn:
        row = service.create_snack(conn, user, body.model_dump())
    return _json(_snack_view(row), 201)


@snacks.get(
    "/snacks/{snack_uid}", response_model=SnackView, summary="One snack", responses=_problems(401, 404, 422)
)
async def get_snack(request: Request, snack_uid: SnackUid) -> JSONResponse:
    user = _user(request)
    with db.transaction() as conn:
        row = repository.snack_by_uid(conn, snack_uid.lower())
        if row is None:
            from opsdeck.errors import NotFound

            raise NotFound(f"no snack {snack_uid}")
        mine = repository.my_reactions(conn, user.id, [row["id"]])
    return _json(_snack_view(service.with_counts([row], mine)[0]))


@snacks.post(
    "/snacks/{snack_uid}/reaction",
    response_model=ReactionView,
    summary="Like or hate a snack (the other one switches it; the same one again is 409)",
    responses=_problems(400, 401, 404, 409, 422),
)
async def react(request: Request, snack_uid: SnackUid, body: ReactionRequest) -> JSONResponse:
    return _json(service.react(_principal(request), snack_uid.lower(), body.type))


@snacks.delete(
    "/snacks/{snack_uid}/reaction",
    response_model=ReactionView,
    summary="Cancel one's reaction",
    responses=_problems(401, 404, 422),
)
async def unreact(request: Request, snack_uid: SnackUid) -> JSONResponse:
    return _json(service.react(_principal(request), snack_uid.lower(), None))


IMAGE_TYPES = {"image/jpeg": "jpg", "image/png": "png", "image/webp": "webp", "image/gif": "gif"}
IMAGE_MAX_BYTES = 5 * 1024 * 1024


class ImageRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"content_type": "image/png"}]})
    content_type: Literal["image/jpeg", "image/png", "image/webp", "image/gif"]


class ImageUpload(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "url": "https://opsdeck-prod-snacks-images.s3.amazonaws.com/",
                    "fields": {
                        "key": "snacks/6f1c9a52-1f43-4d6e-9a57-1b2f0c3d4e5f/0f1e2d3c.png",
                        "Content-Type": "image/png",
                        "policy": "eyJleHBpcmF0aW9uIjo...",
                        "x-amz-signature": "...",
                    },
                    "key": "snacks/6f1c9a52-1f43-4d6e-9a57-1b2f0c3d4e5f/0f1e2d3c.png",
                    "expires_at": 1764580000,
                    "max_bytes": 5242880,
                    "content_type": "image/png",
                }
            ]
        }
    )

    url: str
    fields: dict[str, str]
    key: str
    expires_at: int
    max_bytes: int
    content_type: str


@snacks.post(
    "/snacks/{snack_uid}/image",
    status_code=201,
    response_model=ImageUpload,
    summary="A presigned S3 upload (POST form) for the snack's image: type and size pinned by S3",
    responses=_problems(400, 401, 403, 404, 422),
)
async def image_upload(request: Request, snack_uid: SnackUid, body: ImageRequest) -> JSONResponse:
    grant = service.image_upload(
        _user(request), snack_uid.lower(), body.content_type, IMAGE_TYPES[body.content_type], IMAGE_MAX_BYTES
    )
    return _json({**grant, "max_bytes": IMAGE_MAX_BYTES, "content_type": body.content_type}, 201)


@snacks.get(
    "/snacks/{snack_uid}/image",
    status_code=307,
    response_class=Response,
    summary="Redirect to a short-lived presigned download of the uploaded image",
    responses={
        307: {"description": "Location: the presigned GET URL (5 minutes)"},
        **_problems(401, 404, 422),
    },
)
async def image(request: Request, snack_uid: SnackUid) -> Response:
    _user(request)
    url = service.image_download(snack_uid.lower())
    return Response(status_code=307, headers={"location": url, **NO_STORE})


orders = APIRouter(prefix=BASE, tags=["orders"], dependencies=[Security(bearer)])


def _items(items: list[Item]) -> list[dict]:
    out = []
    for i in items:
        if (i.snack_uid is None) == (i.snack is None):
            raise InvalidInput("each item names exactly one of snack_uid or snack")
        out.append(
            {
                "snack_uid": i.snack_uid.lower() if i.snack_uid else None,
                "snack": i.snack.model_dump() if i.snack else None,
                "quantity": i.quantity,
            }
        )
    return out


@orders.post(
    "/order",
    status_code=201,
    response_model=OrderView,
    summary="Order snacks (registered ones by uid, or any by name) with quantities",
    responses=_problems(400, 401, 404, 409, 422),
)
async def create_order(request: Request, body: NewOrder) -> JSONResponse:
    row = service.create_order(_user(request), _items(body.items), body.note)
    return _json(_order_view(row), 201)


Year = Annotated[int | None, Query(ge=2000, le=2100)]
Month = Annotated[int | None, Query(ge=1, le=12)]


@orders.get(
    "/orders",
    response_model=OrderPage,
    summary="Orders, newest first (members: their own; admins: all); ?year=&month= for a month "
    "(a month alone: of the current year, UTC)",
    responses=_problems(401, 422),
)
async def list_orders(
    request: Request,
    year: Year = None,
    month: Month = None,
    status: Annotated[Literal[domain.STATUSES] | None, Query()] = None,  # type: ignore[valid-type]
    limit: Limit = None,
    cursor: Cursor = None,
) -> JSONResponse:
    user = _user(request)
    start = end = None
    if year is not None or month is not None:
        if year is None:  # a month alone: of this year (UTC)
            year = dt.datetime.now(dt.UTC).year
        p = domain.period(year=year, month=month)
        start, end = p.start, p.end
    size = _limit(limit)
    after = _order_cursor(cursor)
    with db.transaction() as conn:
        rows = repository.order_page(
            conn,
            user_id=None if user.is_admin else user.id,
            start=start,
            end=end,
            status=status,
            limit=size + 1,
            after=after,
        )
    return _json(_order_page(rows, size))


def _order_cursor(cursor: str | None) -> tuple[str, int] | None:
    after = cursor_codec.decode(cursor, "o")
    if after is None:
        return None
    try:
        dt.datetime.fromisoformat(after[0])
        return after[0], int(after[1])
    except (ValueError, TypeError, IndexError):
        raise InvalidInput("cursor is malformed") from None


def _order_page(rows: list[dict], size: int, kind: str = "o") -> dict:
    page = rows[:size]
    nxt = None
    if len(rows) > size:
        last = page[-1]
        nxt = cursor_codec.encode(kind, last["created_at"], last["id"])
    return {"items": [_order_view(r) for r in page], "next_cursor": nxt}


@orders.get(
    "/order/{order_uid}", response_model=OrderView, summary="One order", responses=_problems(401, 404, 422)
)
async def get_order(request: Request, order_uid: OrderUid) -> JSONResponse:
    user = _user(request)
    with db.transaction() as conn:
        return _json(_order_view(service.get_order(conn, user, order_uid.lower())))


@orders.put(
    "/order/{order_uid}",
    response_model=OrderView,
    summary="Change the status (admins) or edit items/note while created",
    responses=_problems(400, 401, 403, 404, 409, 422),
)
async def update_order(
    request: Request, order_uid: OrderUid, body: Annotated[OrderUpdate, Body()]
) -> JSONResponse:
    user = _user(request)
    uid = order_uid.lower()
    if body.status is not None:
        if body.items is not None or body.note is not None:
            raise InvalidInput("a status change carries no items or note; send them separately")
        row = service.transition(user, uid, body.status, body.estimated_arrival)
    else:
        if body.estimated_arrival is not None:
            raise InvalidInput("estimated_arrival goes with a status change to ordered or shipping")
        if body.items is None and body.note is None:
            raise InvalidInput("nothing to change: give status, items or note")
        row = service.edit_order(user, uid, _items(body.items) if body.items is not None else None, body.note)
    return _json(_order_view(row))


#: the period of the statistics: one combination of these query parameters (``PERIOD_SCHEMA``)
PERIOD_KEYS = ("year", "month", "day", "week", "iso_week", "from", "to")
#: a day from 2000-01-01 to 2100-12-31 (with ``format: date``: a day the calendar has)
DAY = r"^(?:20[0-9]{2}|2100)-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12][0-9]|3[01])$"


def _period_branch(*keys: str) -> dict[str, Any]:
    return {"required": list(keys), "properties": {k: False for k in PERIOD_KEYS if k not in keys}}


#: the combinations ``domain.period`` takes, as the document states them: one object parameter
#: ``period``, form-exploded (``?year=2026&month=12``, the wire format of separate parameters),
#: whose ``oneOf`` says which parameters go together — separate parameters cannot say that
PERIOD_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "year": {"type": "integer", "minimum": 2000, "maximum": 2100},
        "month": {"type": "integer", "minimum": 1, "maximum": 12},
        "day": {"type": "integer", "minimum": 1, "maximum": 31},
        "week": {
            "type": "integer",
            "minimum": 1,
            "maximum": 5,
            "description": "n-th week of the month: days 7n-6..7n, the 5th the rest of the month",
        },
        "iso_week": {"type": "integer", "minimum": 1, "maximum": 53, "description": "ISO 8601 week"},
        "from": {"type": "string", "format": "date", "pattern": DAY, "description": "first day, inclusive"},
        "to": {"type": "string", "format": "date", "pattern": DAY, "description": "last day, inclusive"},
    },
    "additionalProperties": False,
    "oneOf": [
        _period_branch("year"),
        _period_branch("year", "month"),
        _period_branch("year", "month", "day"),
        _period_branch("year", "month", "week"),
        _period_branch("year", "iso_week"),
        _period_branch("from", "to"),
    ],
    "examples": [{"year": 2026, "month": 12}],
}


class PeriodQuery(BaseModel):
    """The period parameters as ``PERIOD_SCHEMA`` types them (the combination: ``domain.period``)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    year: Annotated[int | None, Field(ge=2000, le=2100)] = None
    month: Annotated[int | None, Field(ge=1, le=12)] = None
    day: Annotated[int | None, Field(ge=1, le=31)] = None
    week: Annotated[int | None, Field(ge=1, le=5)] = None
    iso_week: Annotated[int | None, Field(ge=1, le=53)] = None
    date_from: Annotated[dt.date | None, Field(alias="from")] = None
    date_to: Annotated[dt.date | None, Field(alias="to")] = None

    @model_validator(mode="before")
    @classmethod
    def _as_documented(cls, data: Any) -> Any:
        """Integers in digits only, days as ``DAY`` (pydantic alone would also take ``+5``,
        ``2026-12-01T00:00``)."""
        if isinstance(data, dict):
            for key, value in data.items():
                rule = DAY if key in ("from", "to") else r"^-?[0-9]{1,9}$"
                if isinstance(value, str) and not re.match(rule, value):
                    raise ValueError(
                        f"{key} is not " + ("a day YYYY-MM-DD" if key in ("from", "to") else "an integer")
                    )
        return data


def _period_query(request: Request) -> PeriodQuery:
    """``PeriodQuery`` of the request's query string: each key once; no key the route does not
    take (the document's ``additionalProperties: false``); 422 for anything else."""
    from fastapi.exceptions import RequestValidationError
    from pydantic import ValidationError

    known = {*PERIOD_KEYS, "limit", "cursor"}
    errors = [
        {"type": "extra_forbidden", "loc": ("query", key), "msg": "unknown query parameter", "input": None}
        for key in request.query_params
        if key not in known
    ] + [
        {"type": "repeated", "loc": ("query", key), "msg": "given more than once", "input": None}
        for key in PERIOD_KEYS
        if len(request.query_params.getlist(key)) > 1
    ]
    if errors:
        raise RequestValidationError(errors)
    values = {k: request.query_params[k] for k in PERIOD_KEYS if k in request.query_params}
    try:
        return PeriodQuery.model_validate(values)
    except ValidationError as exc:
        raise RequestValidationError(
            [{**e, "loc": ("query", *e["loc"])} for e in exc.errors(include_url=False)]
        ) from None


@orders.get(
    "/statistics",
    response_model=Statistics,
    summary="Figures of a period (admins): year / month / day / day range / ISO week / n-th week of a month",
    description="A period the calendar does not have (2023-02-30, week 5 of a 28-day February, ISO "
    "week 53 of a 52-week year, a range that ends before it starts) answers 404.",
    responses=_problems(401, 403, 404, 422),
    openapi_extra={
        "parameters": [
            {
                "name": "period",
                "in": "query",
                "required": True,
                "style": "form",
                "explode": True,
                "description": "year · year+month · year+month+day · year+month+week · year+iso_week · "
                "from+to (whole days, both inclusive)",
                "schema": PERIOD_SCHEMA,
            }
        ]
    },
)
async def statistics(request: Request, limit: Limit = None, cursor: Cursor = None) -> JSONResponse:
    q = _period_query(request)
    principal = _principal(request)
    p = domain.period(
        year=q.year,
        month=q.month,
        day=q.day,
        week=q.week,
        iso_week=q.iso_week,
        date_from=q.date_from,
        date_to=q.date_to,
    )
    size = _limit(limit)
    after = _order_cursor(cursor)
    with db.transaction() as conn:
        service.require_admin(service.current_user(conn, principal))
        figures = service.statistics(conn, p.start, p.end, 100)
        rows = repository.order_page(
            conn, user_id=None, start=p.start, end=p.end, status=None, limit=size + 1, after=after
        )
    by_status = {k: int(v) for k, v in figures["by_status"].items()}
    body = {
        "period": {"kind": p.kind, "label": p.label, "start": p.start.isoformat(), "end": p.end.isoformat()},
        "order_count": sum(v for k, v in by_status.items() if k != "canceled"),
        "orders_by_status": by_status,
        "snack_quantity": int(figures["snack_quantity"]),
        "amount": {c: v["amount"] for c, v in figures["by_currency"].items()},
        "by_currency": figures["by_currency"],
        "snacks": figures["snacks"],
        **_order_page(rows, size),
    }
    return _json(body)


class TrailingSlash:
    """``/snacks/order/`` is ``/snacks/order``: the seed's paths end in a slash (pure ASGI)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            path = scope["path"]
            if len(path) > 1 and path.endswith("/"):
                scope = {**scope, "path": path.rstrip("/") or "/"}
                if scope.get("raw_path"):
                    scope["raw_path"] = scope["raw_path"].rstrip(b"/") or b"/"
        await self.app(scope, receive, send)


# ------------------------------------------------------------ direct reactions

#: the reaction routes' path (``react`` / ``unreact`` above), as ``Direct`` matches it
REACTION_PATH = re.compile(rf"{BASE}/snacks/({UID[1:-1]})/reaction")


def _direct_reaction(request: DirectRequest) -> Any:
    """The reaction toggle without the ASGI stack (``opsdeck.api.Direct``): only requests that
    ``react`` / ``unreact`` would take as they are — a body of exactly ``{"type": "like"|"hate"}``
    sent as ``application/json`` (POST), no body (DELETE), the uid the path pattern allows; anything else goes
    to the app, which validates it (422 / 400) as before. Same service call, same answers."""
    if request.method == "DELETE":
        if request.body:
            return None
        kind = None
    else:
        content_type = request.headers.get("content-type")
        if content_type is None or content_type.lower() != "application/json":
            return None  # FastAPI takes no JSON body without its content type (422)
        try:
            body = json.loads(request.body)
        except ValueError:
            return None
        if type(body) is not dict or len(body) != 1 or body.get("type") not in ("like", "hate"):
            return None
        kind = body["type"]
    snack_uid = request.match.group(1).lower()
    authorization = request.headers.get("authorization", "")
    return lambda: _json(service.react(_bearer_principal(authorization), snack_uid, kind))


app = create_app(
    title="opsdeck snacks",
    base_path=BASE,
    routers=[accounts, snacks, orders],
    description="Team snack ordering (seed 003): accounts with JWT, snacks, reactions, orders, statistics.",
)
app.add_middleware(TrailingSlash)
handler = lambda_handler(
    app,
    direct=[
        Direct("POST", REACTION_PATH, _direct_reaction),
        Direct("DELETE", REACTION_PATH, _direct_reaction),
    ],
)
