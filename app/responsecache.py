"""An in-process cache of rendered read responses, keyed by the request and the data version.

Any write creates a revision, which moves the data version, so a cached body can never be
served after the data changed: no invalidation step to forget.
"""

import threading
from collections import OrderedDict


class ResponseCache:
    def __init__(self, size: int) -> None:
        self.size = size
        self._entries: OrderedDict[tuple[str, int], tuple[bytes, dict[str, str]]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: tuple[str, int]) -> tuple[bytes, dict[str, str]] | None:
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None:
                self._entries.move_to_end(key)
            return entry

    def put(self, key: tuple[str, int], body: bytes, headers: dict[str, str]) -> None:
        if self.size <= 0:
            return
        with self._lock:
            self._entries[key] = (body, headers)
            self._entries.move_to_end(key)
            while len(self._entries) > self.size:
                self._entries.popitem(last=False)
