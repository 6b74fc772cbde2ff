"""Argon2id password hashes (argon2-cffi), checked in constant time.

Parameters for Lambda (one vCPU share, 512 MB): ``t=2, m=19 MiB, p=1`` — OWASP's Argon2id
baseline. The library's defaults (RFC 9106's second recommendation, ``t=3, m=64 MiB, p=4``)
take several times longer per check on a single core and 64 MiB per concurrent sign-in;
``bench/bench_snacks.py`` measures both side by side (BENCHMARKS.md). A hash made with other
parameters still verifies (they are in the hash) and is re-hashed with these on the next sign-in.

Unknown accounts are checked against a dummy hash with the same parameters, so an unknown
email and a wrong password take the same time and give the same answer.
"""

from __future__ import annotations

import functools
from typing import Any

TIME_COST = 2
MEMORY_COST_KIB = 19 * 1024
PARALLELISM = 1
MAX_PASSWORD_LENGTH = 256


@functools.cache
def hasher() -> Any:
    from argon2 import PasswordHasher, Type

    return PasswordHasher(
        time_cost=TIME_COST, memory_cost=MEMORY_COST_KIB, parallelism=PARALLELISM, type=Type.ID
    )


@functools.cache
def _dummy_hash() -> str:
    return hasher().hash("snacks: no such account, checked for equal timing")


def hash_password(password: str) -> str:
    return hasher().hash(password)


def verify(stored_hash: str | None, password: str) -> bool:
    """True iff ``password`` matches; with ``stored_hash=None`` checks a dummy hash (same time)."""
    from argon2.exceptions import InvalidHashError, VerificationError

    try:
        ok = hasher().verify(stored_hash or _dummy_hash(), password)
    except (VerificationError, InvalidHashError):
        return False
    return ok and stored_hash is not None


def needs_rehash(stored_hash: str) -> bool:
    return hasher().check_needs_rehash(stored_hash)
