"""Upload passwords: stored as scrypt hashes, checked in constant time.

A stored password is either a hash made by ``pyfiledrop hash-password`` (``scrypt:16384:8:1:<salt>:<key>``, safe
to keep in a config file) or, for a quick start, the plain text given to ``--password``; both are hashed in memory.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

_PREFIX = "scrypt"
_N, _R, _P = 2**14, 8, 1  # ~50 ms on one core; 16 MiB of memory per check
_KEY_BYTES = 32


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _derive(password: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(password.encode(), salt=salt, n=n, r=r, p=p, maxmem=256 * 2**20, dklen=_KEY_BYTES)


def hash_password(password: str) -> str:
    salt = secrets.token_bytes(16)
    return f"{_PREFIX}:{_N}:{_R}:{_P}:{_b64(salt)}:{_b64(_derive(password, salt, _N, _R, _P))}"


def is_hash(value: str) -> bool:
    return value.startswith(_PREFIX + ":")


def check_hash_format(value: str) -> None:
    """Raise ValueError unless ``value`` is a hash this module can check."""
    parts = value.split(":")
    if len(parts) != 6 or parts[0] != _PREFIX:
        raise ValueError("a password hash looks like scrypt:16384:8:1:<salt>:<key> (from pyfiledrop hash-password)")
    n, r, p = (int(x) for x in parts[1:4])
    if n < 2 or n & (n - 1) or not 1 <= r <= 64 or not 1 <= p <= 16 or n * r > 2**24:
        raise ValueError("the password hash has unusable scrypt parameters")
    if len(_unb64(parts[5])) != _KEY_BYTES:
        raise ValueError("the password hash's key has the wrong length")


def as_hash(value: str) -> str:
    """A configured password, plain or hashed, as a hash."""
    if is_hash(value):
        check_hash_format(value)
        return value
    return hash_password(value)


def verify_password(stored_hash: str, candidate: str) -> bool:
    _, n, r, p, salt, key = stored_hash.split(":")
    derived = _derive(candidate, _unb64(salt), int(n), int(r), int(p))
    return hmac.compare_digest(derived, _unb64(key))
