"""Which of two releases is the newer one."""

from __future__ import annotations

from shiplane.domain.models import Release
from shiplane.domain.versions import parse_version


def is_newer(a: Release, b: Release) -> bool:
    """Release order: by version when both tags are versions (what a person means by
    "the latest release"), else by creation order."""
    va, vb = parse_version(a.version), parse_version(b.version)
    if va is not None and vb is not None and va != vb:
        return va > vb
    return a.sequence > b.sequence
