"""Who is asking: owner tokens issued and signed by the server, and the admin token.

A token is ``<owner id>.<signature>``; the server keeps no list of tokens, only a secret, so a
made-up token is refused and a restart keeps everyone's identity.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
from dataclasses import dataclass

from pyfiledrop.domain.ids import token_urlsafe
from pyfiledrop.errors import Forbidden, NotAuthorized
from pyfiledrop.web.http import Request

log = logging.getLogger("pyfiledrop.auth")
_SECRET_BYTES = 32

COOKIE = "pyfiledrop_token"
HEADER = "x-pyfiledrop-token"
_COOKIE_MAX_AGE = 400 * 24 * 3600  # the longest browsers keep a cookie


@dataclass(frozen=True, slots=True)
class Identity:
    owner: str | None  # None: no valid owner token was sent
    admin: bool = False
    new_token: str | None = None  # set when this request was just given a token

    def require_owner(self) -> str:
        if self.owner is None:
            raise NotAuthorized("this needs your owner token (cookie, X-Pyfiledrop-Token or Bearer header)")
        return self.owner

    def may_manage(self, owner: str) -> bool:
        return self.admin or (self.owner is not None and hmac.compare_digest(self.owner, owner))

    def check_manage(self, owner: str) -> None:
        if not self.may_manage(owner):
            if self.owner is None:
                self.require_owner()
            raise Forbidden("this upload belongs to someone else")


class Authenticator:
    def __init__(self, secret: bytes, admin_token: str, *, admin_sha256: str | None = None) -> None:
        self._secret = secret
        self.admin_token = admin_token
        # Replicas (meta/settings.py): the admin token the database holds, by its sha256, besides this one's own.
        self.admin_sha256 = admin_sha256

    def issue(self) -> str:
        return self._new_owner()[1]

    def _new_owner(self) -> tuple[str, str]:
        """A fresh owner id and its token."""
        owner = token_urlsafe(16)
        # "drop-" is reserved for uploads made through drop links (meta/drops.py); a leading "-" would make the token
        # read as an option on a command line (`pyfiledrop upload --token TOKEN`, scripts using argparse).
        while owner.startswith(("drop-", "-")):
            owner = token_urlsafe(16)
        return owner, f"{owner}.{self._sign(owner)}"

    def owner_of(self, token: str) -> str | None:
        if not token.isascii():
            return None  # the server issues ASCII only (and compare_digest takes no other str)
        owner, _, signature = token.partition(".")
        if owner and signature and hmac.compare_digest(signature, self._sign(owner)):
            return owner
        return None

    def capability(self, purpose: str, value: str) -> str:
        """An unforgeable key for ``value`` (e.g. an upload id), kept nowhere: the URL that carries it is the grant."""
        mac = hmac.digest(self._secret, f"{purpose}:{value}".encode(), "sha256")[:18]
        return base64.urlsafe_b64encode(mac).decode()

    def _sign(self, owner: str) -> str:
        mac = hmac.digest(self._secret, owner.encode(), "sha256")[:16]  # one-shot: in C, no HMAC object
        return base64.urlsafe_b64encode(mac).rstrip(b"=").decode()

    def identify(self, request: Request) -> Identity:
        """Who sent the request. NotAuthorized (401) for a token header that no server could have issued (text
        outside printable ASCII that is not the admin token either): a client's mistake, never a server error."""
        presented = _presented_tokens(request)
        admin_bytes = self.admin_token.encode()
        admin = any(hmac.compare_digest(_sent_bytes(t), admin_bytes) for t in presented) or self._shared_admin(
            presented
        )
        for token in presented:
            owner = self.owner_of(token)
            if owner is not None:
                return Identity(owner, admin)
        if not admin and any(not _printable_ascii(t) for t in _header_tokens(request)):
            raise NotAuthorized("the token sent is malformed: tokens are printable ASCII; ask for a new one")
        return Identity("admin" if admin else None, admin)

    def _shared_admin(self, presented: list[str]) -> bool:
        if self.admin_sha256 is None:
            return False
        wanted = self.admin_sha256.encode()
        return any(hmac.compare_digest(hashlib.sha256(_sent_bytes(t)).hexdigest().encode(), wanted) for t in presented)

    def identify_or_issue(self, request: Request) -> Identity:
        """For requests that create uploads: an anonymous sender becomes an owner on the spot."""
        identity = self.identify(request)
        if identity.owner is not None:
            return identity
        owner, token = self._new_owner()
        return Identity(owner, identity.admin, new_token=token)


def token_headers(identity: Identity, secure: bool) -> list[tuple[str, str]]:
    if identity.new_token is None:
        return []
    cookie = f"{COOKIE}={identity.new_token}; Path=/; Max-Age={_COOKIE_MAX_AGE}; HttpOnly; SameSite=Strict"
    if secure:
        cookie += "; Secure"
    return [("set-cookie", cookie), (HEADER, identity.new_token)]


def _presented_tokens(request: Request) -> list[str]:
    cookie = request.cookies.get(COOKIE)
    return [*_header_tokens(request), *([cookie.strip()] if cookie else [])]


def _header_tokens(request: Request) -> list[str]:
    """Tokens sent in ``Authorization: Bearer`` and X-Pyfiledrop-Token (a cookie is the browser's, not a choice)."""
    found = []
    authorization = request.header("authorization") or ""
    if authorization[:7].lower() == "bearer ":
        found.append(authorization[7:].strip())
    if value := request.header(HEADER):
        found.append(value.strip())
    return found


def _sent_bytes(value: str) -> bytes:
    """The bytes the client sent (header values arrive decoded as Latin-1), so an admin token set with non-ASCII
    text matches when sent as UTF-8, as curl and browsers send it."""
    try:
        return value.encode("latin-1")
    except UnicodeEncodeError:  # not from a header: a cookie value the parser unescaped
        return value.encode()


def _printable_ascii(value: str) -> bool:
    return value.isascii() and value.isprintable()
