"""The per-invocation configuration memo: one read per question, nothing kept across."""

from __future__ import annotations

from typing import Any

from shiplane.adapters.config_cache import InvocationConfig


class CountingStore:
    def __init__(self) -> None:
        self.reads: list[str] = []

    def __getattr__(self, name: str) -> Any:
        def read(*args: Any) -> Any:
            self.reads.append(name + "".join(f":{a}" for a in args))
            return [] if name.startswith("list") or name == "projects_for_repository" else name

        return read


def test_each_question_is_asked_once_per_invocation() -> None:
    store = CountingStore()
    config = InvocationConfig(store)  # type: ignore[arg-type]
    for _ in range(3):
        config.list_environments()
        config.get_lifecycle("default")
        config.get_lifecycle("hotfix")
    assert store.reads == ["list_environments", "get_lifecycle:default", "get_lifecycle:hotfix"]
    InvocationConfig(store).list_environments()  # a new invocation asks again  # type: ignore[arg-type]
    assert store.reads.count("list_environments") == 2


def test_saving_forgets_what_was_read() -> None:
    store = CountingStore()
    config = InvocationConfig(store)  # type: ignore[arg-type]
    config.list_targets()
    config.save_configuration(None)  # type: ignore[arg-type]
    config.list_targets()
    assert store.reads == ["list_targets", "save_configuration:None", "list_targets"]
