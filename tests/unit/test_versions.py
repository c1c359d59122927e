"""Channel version rules (DESIGN §1.2): which tags are versions, how they sort, what a
range contains, and which pushed tags a channel's rules let in, with the reasons shown."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from shiplane.domain.versions import (
    Version,
    VersionRange,
    VersionRule,
    channel_accepts,
    parse_range,
    parse_version,
    rule_accepts,
)
from shiplane.errors import ConfigurationError, InvalidVersionRangeError


def v(tag: str) -> Version:
    version = parse_version(tag)
    assert version is not None, tag
    return version


# --------------------------------------------------------------------------- parsing tags


@pytest.mark.parametrize(
    ("tag", "release", "prerelease", "build"),
    [
        ("1.2.3", (1, 2, 3, 0), "", ""),
        ("v1.2.3", (1, 2, 3, 0), "", ""),
        ("V1.2.3", (1, 2, 3, 0), "", ""),
        ("1.2", (1, 2, 0, 0), "", ""),
        ("7", (7, 0, 0, 0), "", ""),
        ("0.0.0", (0, 0, 0, 0), "", ""),
        ("1.2.3-rc.1", (1, 2, 3, 0), "rc.1", ""),
        ("1.3.0-hotfix.1", (1, 3, 0, 0), "hotfix.1", ""),
        ("2024.11.28.1", (2024, 11, 28, 1), "", ""),
        ("2024.01.05", (2024, 1, 5, 0), "", ""),
        ("01.2", (1, 2, 0, 0), "", ""),
        ("1.0.0-alpha-beta.x-y", (1, 0, 0, 0), "alpha-beta.x-y", ""),
        ("1.0.0-0.3.7", (1, 0, 0, 0), "0.3.7", ""),
        ("1.0.0-20240115.0930", (1, 0, 0, 0), "20240115.0930", ""),
        ("1.0.0+build.5", (1, 0, 0, 0), "", "build.5"),
        ("v1.0.0-rc.1+sha.3f2a9c1", (1, 0, 0, 0), "rc.1", "sha.3f2a9c1"),
        ("1.0.0-rc+-", (1, 0, 0, 0), "rc", "-"),
    ],
)
def test_tags_that_are_versions(tag: str, release: tuple[int, ...], prerelease: str, build: str):
    version = v(tag)
    assert (version.release, version.prerelease, version.build) == (release, prerelease, build)
    assert version.original == str(version) == tag
    assert version.is_prerelease == bool(prerelease)


@pytest.mark.parametrize(
    "tag",
    [
        "latest",
        "main",
        "3f2a9c1",
        "",
        "v",
        "1..2",
        ".1.2",
        "1.2.",
        "1.2.3.4.5",
        "1.2-",
        "1.2+",
        "1.2-rc..1",
        "1.2-rc.",
        "1.2+a..b",
        "1.2-rc_1",
        "vv1.2",
        "release-1.2",
        " 1.2",
        "1.2 ",
        "-1.2",
        "1.2.x",
        "1.2.3-ß",
        "1.2.3\n",
        "1" * 5000,  # more digits than int() converts: not a version, not a crash
    ],
)
def test_tags_that_are_not_versions(tag: str):
    assert parse_version(tag) is None


def test_a_version_built_directly_is_normalised():
    version = Version((1, 2), "rc.1", "b7")
    assert version.release == (1, 2, 0, 0)
    assert str(version) == "1.2-rc.1+b7"
    assert version == v("1.2.0-rc.1")
    with pytest.raises(ValueError, match="1 to 4"):
        Version((1, 2, 3, 4, 5))


# --------------------------------------------------------------------------- ordering

ASCENDING = [
    "0.9",
    "1.0.0-0.3.7",
    "1.0.0-alpha",
    "1.0.0-alpha.1",
    "1.0.0-alpha.beta",
    "1.0.0-beta",
    "1.0.0-beta.2",
    "1.0.0-beta.11",
    "1.0.0-rc.1",
    "1.0.0",
    "1.0.0.1",
    "1.0.1",
    "1.1",
    "1.2.0-hotfix.1",
    "1.2.0",
    "1.10",
    "2024.11.28.1",
    "2024.11.28.2",
]


def test_versions_sort_by_semver_precedence():
    versions = [v(tag) for tag in ASCENDING]
    for low, high in itertools.combinations(versions, 2):
        assert low < high and high > low and low != high, (str(low), str(high))
    assert [str(x) for x in sorted(reversed(versions))] == ASCENDING


@pytest.mark.parametrize(
    ("left", "right"),
    [
        ("1.1", "1.1.0"),
        ("1.1", "1.1.0.0"),
        ("v1.1", "1.1"),
        ("1.0.0+a", "1.0.0+b"),
        ("1.0.0-rc.1+a", "1.0.0-rc.1"),
        ("01.2", "1.2"),
    ],
)
def test_equal_versions(left: str, right: str):
    assert v(left) == v(right)
    assert hash(v(left)) == hash(v(right))
    assert not v(left) < v(right) and not v(right) < v(left)


def test_leading_zero_pre_release_identifiers_sort_numerically_and_stay_distinct():
    assert v("1.0.0-rc.2") < v("1.0.0-rc.010") < v("1.0.0-rc.10")
    assert v("1.0.0-rc.01") != v("1.0.0-rc.1")


def test_versions_do_not_compare_with_strings():
    assert v("1.0") != "1.0"
    with pytest.raises(TypeError):
        _ = v("1.0") < "2.0"  # type: ignore[operator]


# --------------------------------------------------------------------------- ranges


@pytest.mark.parametrize(
    ("text", "inside", "outside"),
    [
        ("1.0", ["1.0", "1.0.0", "1.0.1", "99"], ["0.9", "1.0.0-rc.1"]),
        ("[1.0]", ["1.0", "1.0.0.0", "1.0+build"], ["1.0.1", "0.9", "1.0.0-rc.1"]),
        ("[1.0,2.0)", ["1.0", "1.5", "1.99.99", "2.0.0-rc.1"], ["0.9", "2.0", "2.0.1"]),
        ("(1.0,2.0]", ["1.0.1", "1.0.1-rc.1", "2.0"], ["1.0", "1.0.0-rc.1", "2.0.1"]),
        ("[1.0,2.0]", ["1.0", "2.0"], ["0.9", "2.0.1"]),
        ("(1.0,2.0)", ["1.0.1", "1.9"], ["1.0", "2.0"]),
        ("(1.0,)", ["1.0.1", "1000"], ["1.0", "0.1"]),
        ("[1.0,)", ["1.0", "1000"], ["0.9.9", "1.0.0-rc.1"]),
        ("(,2.0]", ["0.0", "2.0"], ["2.0.1"]),
        ("(,2.0)", ["0.0", "1.9", "2.0.0-rc.1"], ["2.0"]),
        ("[1.0.0-rc.1,1.0.0]", ["1.0.0-rc.1", "1.0.0-rc.2", "1.0.0"], ["1.0.0-beta", "1.0.1"]),
        ("(,1.0],[1.2,)", ["0.1", "1.0", "1.2", "3"], ["1.0.1", "1.1", "1.2.0-rc.1"]),
        ("[1.0],[2.0],(3.0,4.0)", ["1.0", "2.0", "3.5"], ["1.5", "3.0", "4.0"]),
        (" [ 1.0 , 2.0 ) ", ["1.0"], ["2.0"]),
        ("( , 1.0 ] , [ 1.2 , )", ["1.0", "1.2"], ["1.1"]),
        ("[v1.0,v2.0)", ["1.0"], ["2.0"]),
    ],
)
def test_range_membership(text: str, inside: list[str], outside: list[str]):
    version_range = parse_range(text)
    assert version_range.text == str(version_range) == text
    for tag in inside:
        assert version_range.contains(v(tag)), f"{tag} should be in {text}"
    for tag in outside:
        assert not version_range.contains(v(tag)), f"{tag} should not be in {text}"


def test_a_range_built_from_its_text_parses_it():
    assert VersionRange("[1.0,2.0)").contains(v("1.5"))
    with pytest.raises(InvalidVersionRangeError):
        VersionRange("[2.0,1.0)")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[2.0,1.0)", "'[2.0,1.0)': the lower bound 2.0 is above the upper bound 1.0"),
        ("[1.0,2.0", "'[1.0,2.0': missing closing ']' or ')'"),
        ("[1.0,(2.0]", "missing closing ']' or ')'"),
        ("(1.0)", "'(1.0)': an exact version needs square brackets"),
        ("[1.0)", "an exact version needs square brackets"),
        ("[,]", "'[,]': no bounds"),
        ("(,)", "'(,)': no bounds"),
        ("[]", "no bounds"),
        ("[,2.0]", "no lower bound must open with '('"),
        ("[1.0,]", "no upper bound must close with ')'"),
        ("[1.0,1.0)", "'[1.0,1.0)': the interval is empty"),
        ("(1.0,1.0]", "the interval is empty"),
        ("[1.0,2.0,3.0]", "at most two bounds"),
        ("", "'': no range given"),
        ("   ", "no range given"),
        ("latest", "'latest': 'latest' is not a version"),
        ("[1.x,2.0)", "'1.x' is not a version"),
        ("[1.0,2.0.0.0.0)", "'2.0.0.0.0' is not a version"),
        ("1.0 2.0", "'1.0 2.0' is not a version"),
        ("1.0,2.0", "'1.0,2.0' is not a version"),
        (">=1.0", "'>=1.0' is not a version"),
        ("1.0]", "missing opening '[' or '('"),
        ("[1.0,2.0)]", "unexpected ']' after an interval"),
        ("[1.0,2.0) [3.0,)", "unexpected '[' after an interval"),
        ("[1.0],", "a ',' between intervals must be followed by '[' or '('"),
        ("[1.0],2.0", "a ',' between intervals must be followed by '[' or '('"),
        ("(,1.0],[2.0,1.5]", "the lower bound 2.0 is above the upper bound 1.5"),
    ],
)
def test_invalid_ranges_say_what_is_wrong(text: str, message: str):
    with pytest.raises(InvalidVersionRangeError) as caught:
        parse_range(text)
    assert message in caught.value.message
    assert caught.value.details == {"version_range": text}
    assert isinstance(caught.value, ConfigurationError)


# --------------------------------------------------------------------------- rules


def rule(version_range: str | None = None, prerelease: str | None = None) -> VersionRule:
    return VersionRule(package="web", version_range=version_range, prerelease=prerelease)


STABLE_1X = rule("[1.0,2.0)", "^$")
HOTFIX = rule(prerelease="^hotfix")


@pytest.mark.parametrize(
    ("version_rule", "tag", "accepted", "reason"),
    [
        (STABLE_1X, "1.0.0", True, "'1.0.0' is in the range '[1.0,2.0)' and matches"),
        (STABLE_1X, "v1.9.9", True, "matches the pre-release pattern '^$'"),
        (STABLE_1X, "2.0.0", False, "version '2.0.0' is outside the range '[1.0,2.0)'"),
        (STABLE_1X, "0.9", False, "outside the range"),
        (STABLE_1X, "1.5.0-rc.1", False, "pre-release 'rc.1', which does not match"),
        (STABLE_1X, "1.5.0+build.7", True, "in the range"),
        (STABLE_1X, "latest", False, "'latest' is not a version"),
        (STABLE_1X, "3f2a9c1", False, "has a version range '[1.0,2.0)' and a pre-release"),
        (HOTFIX, "1.3.0-hotfix.1", True, "matches the pre-release pattern '^hotfix'"),
        (HOTFIX, "1.3.0", False, "'1.3.0' is stable, which does not match"),
        (
            HOTFIX,
            "1.3.0-rc.1",
            False,
            "has pre-release 'rc.1', which does not match the pre-release pattern '^hotfix'",
        ),
        (HOTFIX, "latest", False, "has a pre-release pattern '^hotfix'"),
        (rule("[1.0,2.0)"), "latest", False, "has a version range '[1.0,2.0)'"),
        (rule("[1.0,2.0)"), "1.5.0-rc.1", True, "in the range"),
        (rule(prerelease="^$"), "latest", False, "is not a version"),
        (rule(prerelease="rc"), "1.0.0-pre-rc.2", True, "matches"),
        (rule(), "latest", True, "sets neither a range nor a pre-release pattern"),
        (rule(), "3f2a9c1", True, "is not a version"),
        (rule(), "1.0.0-rc.1", True, "does not restrict it"),
        (rule("", ""), "latest", True, "sets neither"),
    ],
)
def test_rule_accepts(version_rule: VersionRule, tag: str, accepted: bool, reason: str):
    verdict, why = rule_accepts(version_rule, tag)
    assert verdict is accepted
    assert reason in why


def test_a_rule_rejects_a_bad_range_or_pattern_by_name():
    with pytest.raises(ValidationError, match=r"version range '\[2.0,1.0\)': the lower bound"):
        rule("[2.0,1.0)")
    with pytest.raises(ValidationError, match=r"pre-release pattern '\^\(hotfix' is not a regular"):
        rule(prerelease="^(hotfix")
    with pytest.raises(ValidationError, match="extra"):
        VersionRule.model_validate({"package": "web", "range": "[1.0,2.0)"})
    with pytest.raises(ValidationError):
        VersionRule(package="")


def test_blank_range_and_pattern_mean_none():
    blank = rule("  ", "")
    assert (blank.version_range, blank.prerelease) == (None, None)


def test_channel_applies_only_the_rules_for_the_pushed_repository():
    rules = [
        VersionRule(package="web", version_range="[1.0,2.0)", prerelease="^$"),
        VersionRule(package="worker", prerelease="^hotfix"),
    ]
    assert channel_accepts(rules, "web", "1.2.0")[0]
    assert not channel_accepts(rules, "web", "1.2.0-hotfix.1")[0]
    assert channel_accepts(rules, "worker", "1.2.0-hotfix.1")[0]
    assert not channel_accepts(rules, "worker", "1.2.0")[0]
    assert channel_accepts(rules, "api", "latest") == (True, "no version rule for 'api'")
    assert channel_accepts([], "web", "latest")[0]


def test_every_rule_for_a_repository_must_accept():
    rules = [
        VersionRule(package="web", version_range="[1.0,)"),
        VersionRule(package="web", prerelease="^$"),
    ]
    assert channel_accepts(rules, "web", "1.2.0")[0]
    accepted, reason = channel_accepts(rules, "web", "1.2.0-rc.1")
    assert not accepted and "does not match the pre-release pattern '^$'" in reason
    assert not channel_accepts(rules, "web", "0.9")[0]


# --------------------------------------------------------------------------- properties
#
# Versions are generated as (parts, pre-release identifiers) and compared by a reference
# written here from the SemVer 2.0 rules, independently of the module's sort key.

RawVersion = tuple[tuple[int, ...], tuple[str, ...]]

numbers = st.integers(0, 3) | st.integers(0, 10**6)
numeric_identifiers = st.integers(0, 12).map(str)
# at least one letter or hyphen, anywhere: SemVer's alphanumeric identifier
alphanumeric_identifiers = st.builds(
    lambda head, letter, tail: head + letter + tail,
    st.text(alphabet="09a", max_size=2),
    st.sampled_from(["a", "b", "-", "Z", "z", "rc"]),
    st.text(alphabet="09a-", max_size=2),
)
raw_versions: st.SearchStrategy[RawVersion] = st.tuples(
    st.lists(numbers, min_size=1, max_size=4).map(tuple),
    st.lists(numeric_identifiers | alphanumeric_identifiers, max_size=3).map(tuple),
)
builds = st.lists(st.text(alphabet="ab09-", min_size=1, max_size=4), max_size=2).map(".".join)


def text_of(raw: RawVersion) -> str:
    parts, identifiers = raw
    text = ".".join(map(str, parts))
    return f"{text}-{'.'.join(identifiers)}" if identifiers else text


def reference_compare(a: RawVersion, b: RawVersion) -> int:
    """-1, 0 or 1 by SemVer §11, with missing release parts read as 0."""
    a_parts, b_parts = list(a[0]), list(b[0])
    while len(a_parts) < 4:
        a_parts.append(0)
    while len(b_parts) < 4:
        b_parts.append(0)
    for x, y in zip(a_parts, b_parts, strict=True):
        if x != y:
            return -1 if x < y else 1
    a_pre, b_pre = a[1], b[1]
    if not a_pre or not b_pre:
        # a stable version has higher precedence than any of its pre-releases
        return (len(b_pre) > 0) - (len(a_pre) > 0)
    for x, y in zip(a_pre, b_pre, strict=False):
        if x == y:
            continue
        if x.isdigit() and y.isdigit():
            return -1 if int(x) < int(y) else 1
        if x.isdigit():
            return -1
        if y.isdigit():
            return 1
        return -1 if x < y else 1
    return (len(a_pre) > len(b_pre)) - (len(a_pre) < len(b_pre))


@settings(max_examples=100)
@given(
    prefix=st.sampled_from(["", "v", "V"]),
    parts=st.lists(st.tuples(numbers, st.integers(0, 2)), min_size=1, max_size=4),
    identifiers=st.lists(numeric_identifiers | alphanumeric_identifiers, max_size=3),
    build=builds,
)
def test_tags_round_trip(
    prefix: str, parts: list[tuple[int, int]], identifiers: list[str], build: str
):
    release_text = ".".join("0" * zeros + str(number) for number, zeros in parts)
    tag = prefix + release_text
    tag += f"-{'.'.join(identifiers)}" if identifiers else ""
    tag += f"+{build}" if build else ""
    version = v(tag)
    assert version.release == tuple(n for n, _ in parts) + (0,) * (4 - len(parts))
    assert version.prerelease == ".".join(identifiers)
    assert version.build == build
    assert str(version) == tag
    assert parse_version(str(version)) == version


@settings(max_examples=150)
@given(a=raw_versions, b=raw_versions, c=raw_versions)
def test_order_is_the_semver_total_order(a: RawVersion, b: RawVersion, c: RawVersion):
    va, vb, vc = v(text_of(a)), v(text_of(b)), v(text_of(c))
    expected = reference_compare(a, b)
    assert (va < vb, va == vb, va > vb) == (expected < 0, expected == 0, expected > 0)
    if va == vb:
        assert hash(va) == hash(vb)
    # exactly one of <, ==, > ; and transitivity
    assert sum([va < vb, va == vb, va > vb]) == 1
    if va <= vb <= vc:
        assert va <= vc
    assert sorted([va, vb, vc]) == sorted([vc, vb, va])


def interval_text(
    lower: RawVersion | None, lower_inclusive: bool, upper: RawVersion | None, upper_inclusive: bool
) -> str:
    return (
        ("[" if lower_inclusive else "(")
        + (text_of(lower) if lower else "")
        + ","
        + (text_of(upper) if upper else "")
        + ("]" if upper_inclusive else ")")
    )


def reference_valid(
    lower: RawVersion | None, lower_inclusive: bool, upper: RawVersion | None, upper_inclusive: bool
) -> bool:
    if lower is None and upper is None:
        return False
    if (lower is None and lower_inclusive) or (upper is None and upper_inclusive):
        return False
    if lower is not None and upper is not None:
        order = reference_compare(lower, upper)
        return order < 0 or (order == 0 and lower_inclusive and upper_inclusive)
    return True


def reference_contains(
    lower: RawVersion | None,
    lower_inclusive: bool,
    upper: RawVersion | None,
    upper_inclusive: bool,
    probe: RawVersion,
) -> bool:
    above = lower is None or reference_compare(probe, lower) >= (0 if lower_inclusive else 1)
    below = upper is None or reference_compare(probe, upper) <= (0 if upper_inclusive else -1)
    return above and below


bounds = st.none() | raw_versions


@settings(max_examples=150)
@given(
    lower=bounds,
    lower_inclusive=st.booleans(),
    upper=bounds,
    upper_inclusive=st.booleans(),
    probes=st.lists(raw_versions, max_size=6),
)
def test_interval_contains_matches_the_reference(
    lower: RawVersion | None,
    lower_inclusive: bool,
    upper: RawVersion | None,
    upper_inclusive: bool,
    probes: list[RawVersion],
):
    text = interval_text(lower, lower_inclusive, upper, upper_inclusive)
    if not reference_valid(lower, lower_inclusive, upper, upper_inclusive):
        with pytest.raises(InvalidVersionRangeError):
            parse_range(text)
        return
    version_range = parse_range(text)
    for probe in [*probes, *(b for b in (lower, upper) if b is not None)]:
        expected = reference_contains(lower, lower_inclusive, upper, upper_inclusive, probe)
        assert version_range.contains(v(text_of(probe))) is expected, (text, text_of(probe))


@settings(max_examples=80)
@given(first=raw_versions, second=raw_versions, probe=raw_versions)
def test_a_union_contains_what_either_interval_contains(
    first: RawVersion, second: RawVersion, probe: RawVersion
):
    text = f"(,{text_of(first)}],[{text_of(second)},)"
    expected = reference_compare(probe, first) <= 0 or reference_compare(probe, second) >= 0
    assert parse_range(text).contains(v(text_of(probe))) is expected
    # NuGet's bare version is the minimum, inclusive
    assert parse_range(text_of(second)).contains(v(text_of(probe))) is (
        reference_compare(probe, second) >= 0
    )


@settings(max_examples=80)
@given(a=raw_versions, b=raw_versions, mutation=st.integers(0, 3))
def test_broken_ranges_never_parse(a: RawVersion, b: RawVersion, mutation: int):
    low, high = sorted([a, b], key=lambda raw: v(text_of(raw)))
    low_text, high_text = text_of(low), text_of(high)
    broken = [
        f"[{low_text},{high_text}",  # no closing bracket
        f"({low_text})",  # an exact version in parentheses
        f"[,{high_text}]",  # an unbounded end in a square bracket
        f"[{low_text},{high_text}),",  # a dangling union
    ][mutation]
    with pytest.raises(InvalidVersionRangeError):
        parse_range(broken)
    if reference_compare(low, high) < 0:
        with pytest.raises(InvalidVersionRangeError, match="is above the upper bound"):
            parse_range(f"[{high_text},{low_text}]")


@settings(max_examples=150)
@given(text=st.text(alphabet="[](), .0123v-+rc", max_size=16))
def test_any_text_parses_or_raises_the_range_error(text: str):
    try:
        parse_range(text)
    except InvalidVersionRangeError as exc:
        assert exc.message.startswith(repr(text))
    version = parse_version(text)
    assert version is None or str(version) == text
