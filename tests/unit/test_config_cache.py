"""What a process keeps of callers and webhook endpoints is dropped the moment it may be stale."""

from __future__ import annotations

from service.config_cache import ConfigCache


class Listener:
    """Stands for the notifier: a generation, None while it does not listen."""

    def __init__(self) -> None:
        self.generation: int | None = 1

    def __call__(self) -> int | None:
        return self.generation


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_value_read_under_the_current_generation_is_kept() -> None:
    cache: ConfigCache[str, str] = ConfigCache(Listener())
    cache.put("k", "v", cache.generation())
    assert cache.get("k") == "v"
    assert cache.get("other") is None


def test_a_change_announced_after_the_read_forgets_everything() -> None:
    listener = Listener()
    cache: ConfigCache[str, str] = ConfigCache(listener)
    cache.put("old", "kept", cache.generation())
    listener.generation = 2
    assert cache.get("old") is None


def test_a_value_read_before_a_change_is_not_kept_when_the_notice_came_first() -> None:
    listener = Listener()
    cache: ConfigCache[str, str] = ConfigCache(listener)
    read_under = cache.generation()
    listener.generation = 2  # the change's notice arrives while the read is under way
    cache.put("k", "stale", read_under)
    assert cache.get("k") is None


def test_nothing_is_kept_or_used_while_nobody_listens() -> None:
    listener = Listener()
    cache: ConfigCache[str, str] = ConfigCache(listener)
    cache.put("k", "v", cache.generation())
    listener.generation = None
    assert cache.get("k") is None
    cache.put("k", "v", cache.generation())
    listener.generation = 1  # back, at the generation it had: what it missed is unknown
    assert cache.get("k") is None


def test_each_value_lives_a_short_while_only() -> None:
    clock = Clock()
    cache: ConfigCache[str, str] = ConfigCache(Listener(), keep_seconds=30, clock=clock)
    cache.put("k", "v", cache.generation())
    clock.now += 29
    assert cache.get("k") == "v"
    clock.now += 2
    assert cache.get("k") is None


def test_the_least_recent_go_first_past_the_size() -> None:
    cache: ConfigCache[int, int] = ConfigCache(Listener(), size=3)
    for number in range(5):
        cache.put(number, number, cache.generation())
    assert [cache.get(number) for number in range(5)] == [None, None, 2, 3, 4]


def test_a_change_made_here_is_forgotten_before_any_notice() -> None:
    cache: ConfigCache[str, str] = ConfigCache(Listener())
    cache.put("k", "old", cache.generation())
    read_under = cache.generation()  # a read under way while this process commits a change
    cache.forget()
    assert cache.get("k") is None
    cache.put("k", "read before the change", read_under)
    assert cache.get("k") is None
