"""Channel version rules (DESIGN §1.2): image tags read as versions, NuGet/Maven version
ranges, and whether a channel's rules accept a pushed tag.

Decisions a user can notice:

- Tags are read permissively: an optional `v`/`V`, one to four numeric parts, an optional
  `-prerelease` and an optional `+build`. Numeric parts may have leading zeros and are
  compared as numbers, so date tags such as `2024.01.15` are versions and `01.2` equals
  `1.2` (just as `1.2` equals `1.2.0.0`).
- Ordering is SemVer 2.0 precedence extended to four parts. A pre-release identifier made
  of digits with leading zeros (`0930` in `1.0.0-20240115.0930`, invalid in strict SemVer)
  is accepted and compared as a number, with its text breaking ties so that two different
  pre-release strings are never equal.
- A tag of digits only (`42`, or a git sha that happens to have no letter) is a version.
- Ranges follow NuGet: a bare version is a minimum, inclusive. Unions are Maven's
  comma-separated intervals. An unbounded end must use a parenthesis (`(,2.0]`, not
  `[,2.0]`) and an empty interval (`(1.0,1.0)`) is an error rather than a rule that
  silently refuses everything. Pre-release versions are compared by precedence only:
  filtering them is the pre-release pattern's job, not the range's.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from pydantic import BaseModel, ConfigDict, Field, field_validator

from shiplane.errors import InvalidVersionRangeError

MAX_RELEASE_PARTS = 4

_IDENTIFIERS = r"[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*"
_TAG = re.compile(
    rf"[vV]?(?P<release>[0-9]+(?:\.[0-9]+){{0,{MAX_RELEASE_PARTS - 1}}})"
    rf"(?:-(?P<prerelease>{_IDENTIFIERS}))?"
    rf"(?:\+(?P<build>{_IDENTIFIERS}))?"
)

# --------------------------------------------------------------------------- versions


def _identifier_key(identifier: str) -> tuple[int, int, str]:
    # SemVer §11.4: numeric identifiers compare as numbers and sort before alphanumeric
    # ones, which compare in ASCII order.
    if identifier.isdigit():
        return (0, int(identifier), identifier)
    return (1, 0, identifier)


@functools.total_ordering
@dataclass(frozen=True)
class Version:
    """A tag read as a version. Equality and order ignore `build` and `original`."""

    release: tuple[int, ...]
    prerelease: str = ""
    build: str = field(default="", compare=False)
    original: str = field(default="", compare=False)

    def __post_init__(self) -> None:
        if not 1 <= len(self.release) <= MAX_RELEASE_PARTS or min(self.release) < 0:
            raise ValueError(
                f"a version has 1 to {MAX_RELEASE_PARTS} non-negative parts, got {self.release}"
            )
        given = tuple(self.release)
        padded = given + (0,) * (MAX_RELEASE_PARTS - len(given))
        object.__setattr__(self, "release", padded)
        if not self.original:
            text = ".".join(str(part) for part in given)
            text += f"-{self.prerelease}" if self.prerelease else ""
            text += f"+{self.build}" if self.build else ""
            object.__setattr__(self, "original", text)

    @property
    def is_prerelease(self) -> bool:
        return bool(self.prerelease)

    def _key(self) -> tuple[tuple[int, ...], int, tuple[tuple[int, int, str], ...]]:
        if not self.prerelease:
            # SemVer §11.3: a stable version is above every pre-release of the same release.
            return (self.release, 1, ())
        return (self.release, 0, tuple(_identifier_key(i) for i in self.prerelease.split(".")))

    def __lt__(self, other: object) -> bool:
        if not isinstance(other, Version):
            return NotImplemented
        return self._key() < other._key()

    def __str__(self) -> str:
        return self.original


def parse_version(tag: str) -> Version | None:
    """The version a tag names, or None when the tag is not a version (`latest`, `main`,
    `3f2a9c1`, `1..2`, `1.2.3.4.5`, `1.2-`, ` 1.2`)."""
    match = _TAG.fullmatch(tag)
    if match is None:
        return None
    try:
        release = tuple(int(part) for part in match["release"].split("."))
    except ValueError:  # more digits than Python will convert: not a tag anyone pushes
        return None
    return Version(
        release=release,
        prerelease=match["prerelease"] or "",
        build=match["build"] or "",
        original=tag,
    )


# --------------------------------------------------------------------------- ranges


@dataclass(frozen=True)
class Interval:
    """One interval of a range; a missing bound is unbounded on that side."""

    lower: Version | None
    lower_inclusive: bool
    upper: Version | None
    upper_inclusive: bool

    def contains(self, version: Version) -> bool:
        if self.lower is not None and (
            version < self.lower or (version == self.lower and not self.lower_inclusive)
        ):
            return False
        return self.upper is None or (
            version < self.upper or (version == self.upper and self.upper_inclusive)
        )


@dataclass(frozen=True)
class VersionRange:
    """A NuGet/Maven version range: the union of its intervals.

    `VersionRange("[1.0,2.0)")` parses its text (and raises like `parse_range`)."""

    text: str
    intervals: tuple[Interval, ...] = field(default=(), compare=False)

    def __post_init__(self) -> None:
        if not self.intervals:
            object.__setattr__(self, "intervals", _parse_intervals(self.text))

    def contains(self, version: Version) -> bool:
        return any(interval.contains(version) for interval in self.intervals)

    def __str__(self) -> str:
        return self.text


def parse_range(text: str) -> VersionRange:
    """Read NuGet/Maven interval syntax; raise InvalidVersionRangeError saying what is wrong.

    `1.0` is >= 1.0; `[1.0]` is exactly 1.0; `[1.0,2.0)`, `(1.0,2.0]`, `(1.0,)`, `(,2.0]`
    are intervals; `(,1.0],[1.2,)` is a union. Whitespace around tokens is allowed."""
    return VersionRange(text, _parse_intervals(text))


def _invalid(text: str, problem: str) -> InvalidVersionRangeError:
    return InvalidVersionRangeError(f"{text!r}: {problem}", version_range=text)


def _bound(text: str, token: str) -> Version:
    version = parse_version(token)
    if version is None:
        raise _invalid(text, f"{token!r} is not a version")
    return version


def _parse_intervals(text: str) -> tuple[Interval, ...]:
    body = text.strip()
    if not body:
        raise _invalid(text, "no range given")
    if body[0] not in "[(":
        if body[-1] in "])":
            raise _invalid(text, f"missing opening '[' or '(' before {body[-1]!r}")
        return (Interval(_bound(text, body), True, None, False),)

    intervals = []
    position = 0
    while True:
        opening = body[position]
        closing_at = min(
            (i for i in (body.find("]", position), body.find(")", position)) if i != -1),
            default=-1,
        )
        nested = [
            i for i in (body.find("[", position + 1), body.find("(", position + 1)) if i != -1
        ]
        if closing_at == -1 or (nested and min(nested) < closing_at):
            raise _invalid(text, "missing closing ']' or ')'")
        intervals.append(
            _interval(text, opening, body[position + 1 : closing_at], body[closing_at])
        )
        rest = body[closing_at + 1 :].lstrip()
        if not rest:
            return tuple(intervals)
        if rest[0] != ",":
            raise _invalid(text, f"unexpected {rest[0]!r} after an interval")
        rest = rest[1:].lstrip()
        if not rest or rest[0] not in "[(":
            raise _invalid(text, "a ',' between intervals must be followed by '[' or '('")
        position = len(body) - len(rest)


def _interval(text: str, opening: str, content: str, closing: str) -> Interval:
    tokens = [token.strip() for token in content.split(",")]
    if len(tokens) > 2:
        raise _invalid(text, "an interval has at most two bounds")
    if len(tokens) == 1:
        if not tokens[0]:
            raise _invalid(text, "no bounds")
        if (opening, closing) != ("[", "]"):
            raise _invalid(text, "an exact version needs square brackets")
        exact = _bound(text, tokens[0])
        return Interval(exact, True, exact, True)

    low_text, high_text = tokens
    if not low_text and not high_text:
        raise _invalid(text, "no bounds")
    if not low_text and opening == "[":
        raise _invalid(text, "an interval with no lower bound must open with '('")
    if not high_text and closing == "]":
        raise _invalid(text, "an interval with no upper bound must close with ')'")
    lower = _bound(text, low_text) if low_text else None
    upper = _bound(text, high_text) if high_text else None
    if lower is not None and upper is not None:
        if lower > upper:
            raise _invalid(text, f"the lower bound {lower} is above the upper bound {upper}")
        if lower == upper and (opening, closing) != ("[", "]"):
            raise _invalid(
                text, f"the interval is empty: {lower} is both of its bounds and one is excluded"
            )
    return Interval(lower, opening == "[", upper, closing == "]")


# --------------------------------------------------------------------------- rules


class VersionRule(BaseModel):
    """A channel's rule for one package reference (an ECR repository name).

    A blank range or pattern means none: configuration forms often send "" for "unset".
    """

    # Its own config rather than a shared base: models imports this module for channels.
    # Built on first use, as the domain's models are (see domain/base.py).
    model_config = ConfigDict(extra="forbid", defer_build=True)

    package: str = Field(min_length=1)
    version_range: str | None = None
    prerelease: str | None = None

    @field_validator("version_range")
    @classmethod
    def _range_parses(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        try:
            parse_range(value)
        except InvalidVersionRangeError as exc:
            raise ValueError(f"version range {exc.message}") from exc
        return value

    @field_validator("prerelease")
    @classmethod
    def _pattern_compiles(cls, value: str | None) -> str | None:
        if value is None or not value:
            return None
        try:
            re.compile(value)
        except re.error as exc:
            raise ValueError(
                f"pre-release pattern {value!r} is not a regular expression: {exc}"
            ) from exc
        return value


def rule_accepts(rule: VersionRule, tag: str) -> tuple[bool, str]:
    """Whether `rule` lets `tag` into the channel, and why, in words a person can read.

    The range must contain the version and the pre-release pattern must match the
    version's pre-release part with `re.search` ("" for a stable version: `^$` means
    stable only, `^hotfix` hotfixes only).

    A tag that is not a version (`latest`, a git sha) is accepted only by a rule with
    neither a range nor a pre-release pattern. That is stricter than DESIGN §1.2's "no
    range rule": a pattern such as `^$` means "stable versions only", and `latest` is not
    a stable version.
    """
    version = parse_version(tag)
    if version is None:
        limits = []
        if rule.version_range is not None:
            limits.append(f"version range {rule.version_range!r}")
        if rule.prerelease is not None:
            limits.append(f"pre-release pattern {rule.prerelease!r}")
        if limits:
            return False, (
                f"tag {tag!r} is not a version and the rule for {rule.package!r} "
                f"has a {' and a '.join(limits)}"
            )
        return True, (
            f"tag {tag!r} is not a version; the rule for {rule.package!r} "
            "sets neither a range nor a pre-release pattern"
        )

    reasons = []
    if rule.version_range is not None:
        if not parse_range(rule.version_range).contains(version):
            return False, f"version {tag!r} is outside the range {rule.version_range!r}"
        reasons.append(f"is in the range {rule.version_range!r}")
    if rule.prerelease is not None:
        if re.search(rule.prerelease, version.prerelease) is None:
            part = f"has pre-release {version.prerelease!r}" if version.prerelease else "is stable"
            return False, (
                f"version {tag!r} {part}, which does not match the pre-release pattern "
                f"{rule.prerelease!r}"
            )
        reasons.append(f"matches the pre-release pattern {rule.prerelease!r}")
    if not reasons:
        return True, f"version {tag!r}: the rule for {rule.package!r} does not restrict it"
    return True, f"version {tag!r} {' and '.join(reasons)}"


def channel_accepts(rules: Sequence[VersionRule], repository: str, tag: str) -> tuple[bool, str]:
    """Whether a channel with `rules` accepts `tag` pushed to `repository`.

    Only the rules for this repository apply; with none, the tag is accepted. With
    several, every one must accept it.
    """
    applicable = [rule for rule in rules if rule.package == repository]
    if not applicable:
        return True, f"no version rule for {repository!r}"
    reasons = []
    for rule in applicable:
        accepted, reason = rule_accepts(rule, tag)
        if not accepted:
            return False, reason
        reasons.append(reason)
    return True, "; ".join(reasons)
