"""Declared file types: a client's word is kept and served only when it is a media type (RFC 9110 §8.3.1).

A type comes from a client (tus ``Upload-Metadata`` ``filetype``, a Dropzone part's ``Content-Type``, a PUT's
``Content-Type``) and goes back out in the ``Content-Type`` of every download. Anything else — CR/LF that would end
the response head early, NUL, text outside ASCII — is replaced by ``application/octet-stream``.
"""

from __future__ import annotations

import re

FALLBACK = "application/octet-stream"
REFUSED = ""  # stored for a declared type that was no media type
MAX_LENGTH = 256  # RFC 6838 caps type and subtype names at 127 characters; parameters add little in practice

# token = 1*tchar (RFC 9110 §5.6.2); quoted-string without obs-text (§5.6.4): a sender ought to send ASCII only,
# and a type served to browsers gains nothing from Latin-1 bytes a client declared.
_TCHARS = r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+"
_QUOTED = r'"(?:[\t !#-\[\]-~]|\\[\t -~])*"'
_PARAMETER = rf"[ \t]*;[ \t]*(?:{_TCHARS}=(?:{_TCHARS}|{_QUOTED}))?"
_MEDIA_TYPE = re.compile(rf"{_TCHARS}/{_TCHARS}(?:{_PARAMETER})*")


def is_media_type(value: str) -> bool:
    """Whether ``value`` matches ``type "/" subtype *( OWS ";" OWS [ parameter ] )`` in ASCII, within the cap."""
    return len(value) <= MAX_LENGTH and _MEDIA_TYPE.fullmatch(value) is not None


def safe_media_type(value: str | None) -> str:
    """``value`` without surrounding blanks if it is a media type, else ``application/octet-stream``."""
    text = (value or "").strip(" \t")
    return text if is_media_type(text) else FALLBACK


def declared_type(value: str | None) -> str:
    """What is stored of the type a client declared: the type when it is a media type; ``application/octet-stream``
    when none was declared (the download may then go by the file name's extension); ``REFUSED`` when one was declared
    and is no media type — served as ``application/octet-stream``, never guessed from the name."""
    text = (value or "").strip(" \t")
    if not text:
        return FALLBACK
    return text if is_media_type(text) else REFUSED
