"""The small HTML pages of a share link: the list of its files, its password form, what a link-preview bot sees.

No script: every value goes through html.escape; the page's CSP allows its stylesheet and nothing else.
"""

from __future__ import annotations

import html
from collections.abc import Sequence

from pyfiledrop.domain.model import Upload
from pyfiledrop.web.http import Response

_HEADERS = [
    ("content-type", "text/html; charset=utf-8"),
    ("cache-control", "private, no-store"),
    ("content-security-policy",
     "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; "
     "base-uri 'none'"),
    ("x-frame-options", "DENY"),
    ("referrer-policy", "no-referrer"),
]  # fmt: skip


def size_text(count: int) -> str:
    """The page's units (MiB, GiB), as the upload page shows them."""
    value = float(count)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} TiB"  # pragma: no cover


def _page(title: str, body: str, status: int = 200) -> Response:
    text = (
        '<!doctype html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        '<meta name="robots" content="noindex, nofollow">\n'
        f'<meta property="og:title" content="{html.escape(title)}">\n'
        f"<title>{html.escape(title)}</title>\n"
        '<link rel="icon" href="/favicon.ico" type="image/svg+xml">\n'
        '<link rel="stylesheet" href="/static/style.css">\n</head>\n'
        f'<body class="share-page">\n<main>\n{body}\n</main>\n</body>\n</html>\n'
    )
    return Response(status, list(_HEADERS), text.encode())


def listing(title: str, uploads: Sequence[Upload], names: Sequence[str], base: str, note: str = "") -> Response:
    """Names, sizes and sha256 of every file, a link to each, and one to a zip of all of them."""
    total = sum(u.size or 0 for u in uploads)
    rows = []
    for number, (upload, name) in enumerate(zip(uploads, names, strict=True), start=1):
        rows.append(
            f'<tr><td class="name"><a href="{base}/{number}">{html.escape(name)}</a></td>'
            f"<td>{size_text(upload.size or 0)}</td>"
            f'<td><code class="sha256">{html.escape(upload.sha256 or "")}</code></td></tr>'
        )
    extra = f'<p class="muted">{html.escape(note)}</p>' if note else ""
    body = (
        f"<h1>{html.escape(title)}</h1>\n"
        f"<p>{len(uploads)} file{'s' if len(uploads) != 1 else ''}, {size_text(total)} in all.</p>\n{extra}\n"
        f'<p><a class="button primary" href="{base}/zip" download>Download all (.zip, {size_text(total)})</a></p>\n'
        '<div class="table-wrap"><table id="share-files">\n'
        "<thead><tr><th>Name</th><th>Size</th><th>sha256</th></tr></thead>\n"
        f"<tbody>{''.join(rows)}</tbody>\n</table></div>"
    )
    return _page(title, body)


def password_form(action: str, message: str = "", status: int = 401) -> Response:
    error = f'<p class="error-text" role="alert">{html.escape(message)}</p>' if message else ""
    body = (
        "<h1>This share link needs its password</h1>\n"
        f'<form method="post" action="{html.escape(action)}" class="unlock-form">\n'
        '<label for="share-password">Password</label>\n'
        '<input id="share-password" name="password" type="password" autocomplete="current-password" autofocus>\n'
        '<button class="button primary" type="submit">Open</button>\n</form>\n'
        f"{error}"
    )
    return _page("Password needed", body, status)


def preview(title: str, detail: str) -> Response:
    """What a chat app's link-preview bot gets: a title, never the file, never a counted download."""
    return _page(title, f"<h1>{html.escape(title)}</h1>\n<p>{html.escape(detail)}</p>")
