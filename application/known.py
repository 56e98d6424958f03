"""Keys of tasks this process has seen stored: a bounded hint of where to look first, never the truth."""

from __future__ import annotations

from collections import OrderedDict

from domain.model import TaskKey


class KnownTasks:
    """The `size` task keys seen stored most recently. A key here was stored once and may be gone since;
    a key not here may well exist (stored before a restart, by another replica, or by POST /tasks)."""

    def __init__(self, size: int = 10_000) -> None:
        self._keys: OrderedDict[TaskKey, None] = OrderedDict()
        self._size = size

    def seen(self, key: TaskKey) -> bool:
        if key not in self._keys:
            return False
        self._keys.move_to_end(key)
        return True

    def add(self, key: TaskKey) -> None:
        self._keys[key] = None
        self._keys.move_to_end(key)
        if len(self._keys) > self._size:
            self._keys.popitem(last=False)

    def __len__(self) -> int:
        return len(self._keys)
