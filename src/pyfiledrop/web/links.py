"""What an uploader is given at the end of an upload, per mode (docs/sharing.md).

* downloads open to all (``-a``): the plain ``/download/{id}`` URL;
* otherwise, to whoever may manage the upload (its owner token, the admin): ``/download/{id}?key=…``, a URL that
  carries its own capability (an HMAC of the id under the server's secret), so that the URL ``curl -T`` and
  ``pyfiledrop upload`` print works from any browser or script, without the owner token that a curl user never
  keeps. It dies with the upload; for a revocable, expiring or counted link, make a share link (/s/…);
* through a drop link, without ``-a``: nobody but the host's owner may download — no URL, but a clear
  "received — stored for the owner of this drop".
"""

from __future__ import annotations

import hmac

from pyfiledrop.domain.model import Upload, UploadState
from pyfiledrop.web.auth import Identity
from pyfiledrop.web.context import Context
from pyfiledrop.web.http import Request

KEY_PARAM = "key"
STORED_FOR_OWNER = "received — stored for the owner of this drop"
_PURPOSE = "download"


def download_key(ctx: Context, upload: Upload) -> str:
    return ctx.auth.capability(_PURPOSE, upload.id)


def has_download_key(ctx: Context, request: Request, upload: Upload) -> bool:
    presented = request.query.get(KEY_PARAM)
    return presented is not None and hmac.compare_digest(presented.encode(), download_key(ctx, upload).encode())


def download_link(ctx: Context, request: Request, upload: Upload, identity: Identity) -> str | None:
    """The URL that works for the one asking, or None when they may not download this upload."""
    if upload.state is not UploadState.COMPLETE:
        return None
    url = ctx.download_url(request, upload.id)
    if ctx.settings.allow_downloads:
        return url
    if identity.may_manage(upload.owner):
        return f"{url}?{KEY_PARAM}={download_key(ctx, upload)}"
    return None
