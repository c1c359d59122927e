"""`python -m shiplane_local.iam report [DIR]`: per role, the calls authorized and denied in
a run and the grants never used (least privilege, measured). The test session saves its
decisions under $SHIPLANE_IAM_USAGE_DIR (default .shiplane/iam-usage/), having cleared
what the previous run saved; `clear` does that by hand."""

from __future__ import annotations

import sys
from pathlib import Path

from .usage import clear, merge, render, usage_dir


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in ("report", "clear"):
        print(__doc__)
        return 2
    directory = Path(argv[1]) if len(argv) > 1 else usage_dir()
    if argv[0] == "clear":
        clear(directory)
        return 0
    reports = merge(directory)
    if not reports:
        print(f"no IAM usage saved under {directory}")
        return 1
    print(render(reports))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
