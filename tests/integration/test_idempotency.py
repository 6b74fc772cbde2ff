"""Powertools Idempotency on the shared Redis: a side effect runs once per key."""

from __future__ import annotations

from aws_lambda_powertools.utilities.idempotency import idempotent_function

from opsdeck.idempotency import config, persistence
from tests.support import LambdaContext

SEND_CONFIG = config(expires_after_seconds=60, key_jmespath="id")
sent: list[str] = []


@idempotent_function(data_keyword_argument="message", persistence_store=persistence(), config=SEND_CONFIG)
def send(message: dict) -> dict:
    sent.append(message["id"])
    return {"delivered": message["id"]}


def test_repeated_calls_run_the_side_effect_once(redis_client):
    sent.clear()
    SEND_CONFIG.register_lambda_context(LambdaContext())
    first = send(message={"id": "order-1", "text": "a"})
    again = send(message={"id": "order-1", "text": "same key, other text"})
    other = send(message={"id": "order-2", "text": "b"})
    assert (first, again, other) == (
        {"delivered": "order-1"},
        {"delivered": "order-1"},
        {"delivered": "order-2"},
    )
    assert sent == ["order-1", "order-2"]


NOTE_CONFIG = config(expires_after_seconds=60, key_jmespath="order")
notes: list[str] = []


@idempotent_function(data_keyword_argument="message", persistence_store=persistence(), config=NOTE_CONFIG)
def note(message: dict) -> dict:
    notes.append(message["order"])
    return {"noted": message["order"]}


def test_each_function_keeps_its_own_key_expression(redis_client):
    """Two decorated functions must not share one store's configuration."""
    sent.clear()
    notes.clear()
    SEND_CONFIG.register_lambda_context(LambdaContext())
    NOTE_CONFIG.register_lambda_context(LambdaContext())
    send(message={"id": "a", "order": "x"})
    note(message={"id": "a", "order": "x"})
    note(message={"id": "b", "order": "x"})  # same order: deduplicated by ITS key, "order"
    note(message={"id": "a", "order": "y"})
    assert sent == ["a"]
    assert notes == ["x", "y"]
