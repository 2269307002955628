"""Who may create uploads: anyone (the seed's open drop), whoever knows ``--password``, or a drop link's holder.

Only creating an upload is gated: once made, its unguessable tus URL is the capability to send its bytes, as for
any tus client. Wrong passwords are rate-limited per address (``--login-rate``), with 429 and Retry-After, and so is
creating uploads (``--create-rate``): the gate counts creations, whatever the protocol or method override that led
here (tus POST, PUT, a Dropzone form or first chunk, a drop link), rather than guessing them from the request line.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import logging
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from pyfiledrop import passwords
from pyfiledrop.config import Settings
from pyfiledrop.engine import events
from pyfiledrop.engine.service import Allowance
from pyfiledrop.errors import DropNotFound, PasswordRequired, PyfiledropError, WrongPassword
from pyfiledrop.logs import safe_path
from pyfiledrop.meta.drops import DROP_OWNER_PREFIX, Drop, DropStore
from pyfiledrop.web.auth import Authenticator, Identity
from pyfiledrop.web.guard import RateLimiter, client_address
from pyfiledrop.web.http import Request, as_utf8

PASS_COOKIE = "pyfiledrop_pass"  # noqa: S105 - a cookie name
DROP_HEADER = "x-pyfiledrop-drop"
PASSWORD_HEADER = "x-pyfiledrop-password"  # noqa: S105 - a header name
_REMEMBERED_CHECKS = 256  # verified (hash, password) pairs: scrypt costs ~40 ms, a Dropzone chunk comes every 100


@dataclass(frozen=True, slots=True)
class Uploader:
    """Who is creating an upload, and within which limits."""

    identity: Identity  # its new_token, if any, goes back to the client
    owner: str
    allowance: Allowance | None
    count_creation: Callable[[], None]  # spends one of the address's --create-rate tokens, or RateLimited
    client_address: str  # the address the upload came from (the proxy's client with --behind-proxy)


class Access:
    def __init__(self, settings: Settings, auth: Authenticator, drops: DropStore, secret: bytes) -> None:
        self.auth = auth
        self.drops = drops
        self.password_hash = passwords.as_hash(settings.password) if settings.password else None
        self.behind_proxy = settings.behind_proxy
        self._secret = secret
        self._failures = RateLimiter(settings.login_rate, "wrong passwords")
        self._creations = RateLimiter(settings.create_rate, "new uploads")
        self._checked: OrderedDict[tuple[str, str], None] = OrderedDict()

    # -- the gate -----------------------------------------------------------------------------------------------

    async def uploader(
        self, request: Request, *, drop_token: str | None = None, issue: bool = True, creates: bool = True
    ) -> Uploader:
        """The creator of a new upload, or PasswordRequired / WrongPassword / DropNotFound / DropClosed /
        RateLimited.

        ``issue``: an anonymous sender gets an owner token on the spot (not for tus parts, which are owned by
        nobody when sent without one: see protocols/tus.py). ``creates``: the request makes one new upload, so it
        is counted against ``--create-rate`` here; a Dropzone chunk only may (the first to arrive creates the file),
        so its handler calls ``Uploader.count_creation`` itself when it does.
        """
        client = client_address(request, self.behind_proxy)
        uploader = await self._gate(request, drop_token, issue=issue, client=client,
                                    count=lambda: self._creations.take(client))  # fmt: skip
        if creates:
            uploader.count_creation()
        return uploader

    async def _gate(
        self, request: Request, drop_token: str | None, *, issue: bool, client: str, count: Callable[[], None]
    ) -> Uploader:
        token = drop_token or request.header(DROP_HEADER)
        if token:
            drop = await self.drops.resolve(token)
            events.name_drop(drop.owner, drop.label)
            if drop.password_hash is not None:
                await self.check_password(request, drop.password_hash, "this drop link needs its password")
            return Uploader(Identity(None), drop.owner, drop_allowance(drop), count, client)
        identity = self.auth.identify_or_issue(request) if issue else self.auth.identify(request)
        if self.password_required(request, identity):
            assert self.password_hash is not None
            await self.check_password(
                request, self.password_hash,
                "uploading to this server needs its password: unlock the page, or send it with "
                "curl -u :PASSWORD or the X-Pyfiledrop-Password header",
            )  # fmt: skip
        owner = identity.require_owner() if issue else identity.owner or ""
        return Uploader(identity, owner, None, count, client)

    async def sent_through_drop(self, request: Request, owner: str) -> bool:
        """Whether the request holds the open drop link that made uploads of ``owner`` (to see their status)."""
        token = request.header(DROP_HEADER)
        if not token:
            return False
        try:
            drop = await self.drops.resolve(token)
        except PyfiledropError:
            return False
        return hmac.compare_digest(drop.owner, owner)

    async def check_still_open(self, owner: str) -> None:
        """An upload made through a drop link takes no more bytes once the link is revoked or expired."""
        if owner.startswith(DROP_OWNER_PREFIX):
            try:
                drop = await self.drops.get(owner.removeprefix(DROP_OWNER_PREFIX))
            except DropNotFound:
                return  # an owner token that happens to start so (auth.issue never makes one)
            drop.check_open()

    def password_required(self, request: Request, identity: Identity | None = None) -> bool:
        """Whether this request still needs the server's password (not admin, not unlocked by a login)."""
        if self.password_hash is None:
            return False
        identity = identity or self.auth.identify(request)
        return not identity.admin and not self._has_pass(request)

    async def check_password(self, request: Request, stored_hash: str, missing: str) -> None:
        candidate = _presented_password(request)
        if candidate is None:
            raise PasswordRequired(missing)
        await self.verify(request, stored_hash, candidate)

    async def verify(self, request: Request, stored_hash: str, candidate: str) -> None:
        client = client_address(request, self.behind_proxy)
        self._failures.check(client)  # a blocked address is refused before any guess is tried
        key = (stored_hash, hashlib.sha256(candidate.encode()).hexdigest())
        if key in self._checked:
            self._checked.move_to_end(key)
            return
        if not await asyncio.to_thread(passwords.verify_password, stored_hash, candidate):
            events.emit("password.wrong", logging.WARNING, client=client, path=safe_path(request.path, ""))
            self._failures.take(client)
            raise WrongPassword()
        self._checked[key] = None
        while len(self._checked) > _REMEMBERED_CHECKS:
            self._checked.popitem(last=False)

    # -- the unlocked browser -------------------------------------------------------------------------------------

    def pass_cookie(self, secure: bool) -> str:
        """Set after a right password: HttpOnly, bound to the password (changing it locks every browser again)."""
        value = f"{PASS_COOKIE}={self._pass_value()}; Path=/; Max-Age={30 * 24 * 3600}; HttpOnly; SameSite=Strict"
        return value + ("; Secure" if secure else "")

    def _has_pass(self, request: Request) -> bool:
        presented = request.cookies.get(PASS_COOKIE)
        return presented is not None and hmac.compare_digest(presented.encode(), self._pass_value().encode())

    def _pass_value(self) -> str:
        mac = hmac.new(self._secret, b"upload-pass:" + (self.password_hash or "").encode(), hashlib.sha256)
        return base64.urlsafe_b64encode(mac.digest()[:18]).decode()


def drop_allowance(drop: Drop) -> Allowance:
    return Allowance("this drop link", drop.max_bytes, drop.max_files)


def _presented_password(request: Request) -> str | None:
    given = request.header(PASSWORD_HEADER)
    if given is not None:
        return as_utf8(given)  # as -u :pw and /api/login read it
    authorization = request.header("authorization") or ""
    if authorization[:6].lower() == "basic ":
        try:
            decoded = base64.b64decode(authorization[6:].strip(), validate=True).decode()
        except ValueError:  # binascii.Error, UnicodeDecodeError, and text outside ASCII: no password at all
            return None
        return decoded.partition(":")[2]  # curl -u :PASSWORD (any user name)
    return None
