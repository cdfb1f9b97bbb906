"""The receiving server's verdict on the sender (RFC 8601
Authentication-Results).

Anyone can write an Authentication-Results header into a message: only the
one written by the server the box trusts counts. That server names itself
in the header's first element (the authserv-id), and RFC 8601 section 5
has it remove any header claiming its id from incoming mail; it adds its
own on top, so the topmost header with the trusted id is the one.

From that header:
- ``failures``: checks that failed for the sender's domain (a request is
  refused whatever the instance's authentication);
- ``authenticated``: the check that proves the From address, for
  instances that rely on the sender's address alone: DMARC pass, or DKIM or
  SPF pass for a domain aligned with the From domain. ``softfail``,
  ``neutral`` and ``none`` prove nothing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

_CHECKED = {"spf": "smtp.mailfrom", "dkim": "header.d", "dmarc": "header.from"}
_FAILED = {"fail", "hardfail"}
_COMMENT = re.compile(r"\([^()]*\)")
_RESULT = re.compile(r"^\s*([A-Za-z0-9_-]+)\s*=\s*([A-Za-z0-9_-]+)")
_PROPERTY = re.compile(r"([A-Za-z0-9_-]+\.[A-Za-z0-9_-]+)\s*=\s*\"?([^\s\";]+)\"?")


@dataclass(frozen=True)
class Result:
    method: str  # spf, dkim, dmarc, ...
    result: str  # pass, fail, softfail, none, ...
    props: dict[str, str] = field(default_factory=dict)

    def about(self) -> str:
        """The domain this result speaks of."""
        value = self.props.get(_CHECKED.get(self.method, ""), "") or self.props.get("header.i", "")
        return (value or self.props.get("header.from", "")).rpartition("@")[2].lower()

    def __str__(self) -> str:
        return f"{self.method}={self.result}"


def trusted(headers: list[str], authserv_id: str) -> list[Result] | None:
    """The results of the topmost header written by ``authserv_id``, or None
    when no header is that server's (a header of another id is ignored)."""
    wanted = authserv_id.strip().lower()
    if not wanted:
        return None
    for header in headers:
        text = _uncomment(header)
        first, _, rest = text.partition(";")
        words = first.split()
        if not words or words[0].lower() != wanted:
            continue
        return _results(rest)
    return None


def failures(results: list[Result], sender: str) -> list[str]:
    """The failed checks for ``sender``'s domain, e.g. ``["dmarc=fail"]``."""
    domain = _domain(sender)
    return [
        str(r) for r in results if r.method in _CHECKED and r.result in _FAILED and _aligned(r.about(), domain, True)
    ]


def authenticated(results: list[Result], sender: str) -> Result | None:
    """The passing check that vouches for ``sender``'s domain, or None."""
    domain = _domain(sender)
    for wanted in ("dmarc", "dkim", "spf"):
        for result in results:
            if result.method == wanted and result.result == "pass" and _aligned(result.about(), domain, False):
                return result
    return None


def summary(results: list[Result] | None) -> str:
    if not results:
        return "no verdict"
    return " ".join(str(r) for r in results if r.method in _CHECKED) or "no SPF, DKIM or DMARC verdict"


def _results(text: str) -> list[Result]:
    out = []
    for resinfo in text.split(";"):
        match = _RESULT.match(resinfo)
        if match is None:
            continue
        props = {k.lower(): v for k, v in _PROPERTY.findall(resinfo[match.end() :])}
        out.append(Result(match.group(1).lower(), match.group(2).lower(), props))
    return out


def _uncomment(header: str) -> str:
    text = header
    while _COMMENT.search(text):  # comments may nest; none carries a verdict
        text = _COMMENT.sub(" ", text)
    return text


def _domain(address: str) -> str:
    return address.rpartition("@")[2].lower()


def _aligned(about: str, domain: str, missing_counts: bool) -> bool:
    """Relaxed alignment (the same organisational tree); a result that names
    no domain counts for failures (it speaks of this message) but never as
    proof."""
    if not about:
        return missing_counts
    return about == domain or domain.endswith("." + about) or about.endswith("." + domain)
