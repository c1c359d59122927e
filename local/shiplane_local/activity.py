"""Book-keeping of work in flight, so `LocalCloud.wait_idle()` knows when the cloud is quiet."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any


class Activity:
    """Thread-safe counters of busy things by kind ("lambda invocation", "event delivery")."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._busy: Counter[str] = Counter()
        self.errors: list[str] = []

    @contextmanager
    def busy(self, kind: str) -> Iterator[None]:
        self.enter(kind)
        try:
            yield
        finally:
            self.leave(kind)

    def enter(self, kind: str) -> None:
        with self._lock:
            self._busy[kind] += 1

    def leave(self, kind: str) -> None:
        with self._lock:
            self._busy[kind] -= 1
            if self._busy[kind] <= 0:
                del self._busy[kind]

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return dict(self._busy)

    def spawn(self, kind: str, target: Callable[..., Any], *args: Any, name: str = "") -> None:
        """Run `target` in a daemon thread, counted as busy from this call until it returns.

        The count is taken before the thread starts, so a caller that returns right after
        `spawn` never leaves a window in which the work is invisible to `wait_idle`.
        """
        self.enter(kind)

        def run() -> None:
            try:
                target(*args)
            finally:
                self.leave(kind)

        threading.Thread(target=run, name=name or f"shiplane-local-{kind}", daemon=True).start()
