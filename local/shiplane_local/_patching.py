"""Reversible monkey-patches of moto internals.

moto is pinned exactly (5.2.5) because the local cloud replaces a few of its methods;
every replacement goes through `Patches` so `LocalCloud.stop()` puts moto back as it was.
"""

from __future__ import annotations

from typing import Any


class Patches:
    """Record attribute replacements and undo them in reverse order."""

    def __init__(self) -> None:
        self._undo: list[tuple[Any, str, Any, bool]] = []

    def replace(self, owner: Any, name: str, new: Any) -> Any:
        """Set `owner.name = new`; return the previous value (the original to delegate to)."""
        had_own = name in vars(owner)
        old = vars(owner)[name] if had_own else getattr(owner, name)
        self._undo.append((owner, name, old, had_own))
        setattr(owner, name, new)
        return old

    def add(self, owner: Any, name: str, new: Any) -> None:
        """Give `owner` an attribute it lacks (an operation moto does not implement)."""
        if hasattr(owner, name):
            raise AttributeError(f"{owner.__name__}.{name} exists: replace it instead")
        self._undo.append((owner, name, None, False))
        setattr(owner, name, new)

    def undo(self) -> None:
        while self._undo:
            owner, name, old, had_own = self._undo.pop()
            if had_own:
                setattr(owner, name, old)
            else:
                delattr(owner, name)
