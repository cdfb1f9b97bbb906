"""The receiving server's verdict on the sender (RFC 8601
Authentication-Results): a request whose SPF, DKIM or DMARC check failed for
the sender's own domain is refused.

Only the topmost header counts: the receiving server adds its own on top,
while any header below it came with the message and may be forged.
"""

from __future__ import annotations

import re

_CHECKED = {"spf": "smtp.mailfrom", "dkim": "header.d", "dmarc": "header.from"}
_FAILED = {"fail", "hardfail"}
_COMMENT = re.compile(r"\([^()]*\)")
_RESULT = re.compile(r"^\s*([A-Za-z0-9_-]+)\s*=\s*([A-Za-z0-9_-]+)")
_PROPERTY = re.compile(r"([A-Za-z0-9_-]+\.[A-Za-z0-9_-]+)\s*=\s*\"?([^\s\";]+)\"?")


def failures(header: str, sender: str) -> list[str]:
    """The failed checks for ``sender``'s domain, e.g. ``["dmarc=fail"]``."""
    if not header:
        return []
    domain = sender.rpartition("@")[2].lower()
    text = header
    while _COMMENT.search(text):  # comments may nest; none carries a verdict
        text = _COMMENT.sub(" ", text)
    out = []
    for resinfo in text.split(";")[1:]:  # the first element is the authserv-id
        match = _RESULT.match(resinfo)
        if match is None:
            continue
        method, result = match.group(1).lower(), match.group(2).lower()
        if method not in _CHECKED or result not in _FAILED:
            continue
        props = {k.lower(): v for k, v in _PROPERTY.findall(resinfo[match.end() :])}
        about = props.get(_CHECKED[method]) or props.get("header.i") or props.get("header.from") or ""
        about = about.rpartition("@")[2].lower()
        if not about or about == domain or domain.endswith("." + about) or about.endswith("." + domain):
            out.append(f"{method}={result}")
    return out
