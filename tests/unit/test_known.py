from application.known import KnownTasks
from domain.model import TaskKey


def test_the_least_recently_seen_key_is_forgotten_first() -> None:
    known = KnownTasks(size=2)
    a, b, c = TaskKey("agent", "a"), TaskKey("agent", "b"), TaskKey("agent", "c")
    known.add(a)
    known.add(b)
    assert known.seen(a)  # b is now the least recent

    known.add(c)

    assert len(known) == 2
    assert known.seen(a) and known.seen(c) and not known.seen(b)


def test_adding_a_key_again_keeps_one_entry() -> None:
    known = KnownTasks(size=2)
    key = TaskKey("agent", "a")
    known.add(key)
    known.add(key)
    assert len(known) == 1 and known.seen(key) and not known.seen(TaskKey("other", "a"))
