# Copyright 2026 rrb_ros contributors
#
# Licensed under the Apache License, Version 2.0 (the "License");
# you may not use this file except in compliance with the License.
# You may obtain a copy of the License at
#
#     http://www.apache.org/licenses/LICENSE-2.0
#
# Unless required by applicable law or agreed to in writing, software
# distributed under the License is distributed on an "AS IS" BASIS,
# WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
# See the License for the specific language governing permissions and
# limitations under the License.

"""Matches messages of several streams by header stamp (message_filters is not a dependency).

Pure Python, no rclpy: subscription callbacks call `StampSynchronizer.add` with the stamp in
nanoseconds (`convert.stamp_to_ns(msg.header.stamp)`) and process the set it returns.
"""

from __future__ import annotations

import bisect
import itertools
import threading
from typing import Any, NamedTuple, Sequence

REWIND_NS = 1_000_000_000
"""A stamp this far (ns) behind the last one means time went back, not a late message."""


class Match(NamedTuple):
    """A complete set of messages with matching stamps."""

    stamp_ns: int
    """Stamp (ns) of the message of the first synchronised stream, e.g. the image."""
    msgs: dict[str, Any]
    """Stream name -> message, one per stream, in the order the streams were named."""


class StampSynchronizer:
    """Collect messages of N named streams and emit them as sets with matching stamps.

    Synchronised streams: a set is complete when every synchronised stream has a message and
    all their stamps lie within `tolerance_ns` of each other (0: identical stamps). `add`
    returns the set as soon as it is complete; when several are, the newest wins. Once a set is
    emitted, the older messages still queued on its streams can no longer be emitted (the
    output stays in stamp order), so they are discarded, as is any later arrival not newer than
    the last emitted message of its stream. Each stream keeps at most `queue_size` messages;
    when a stream's partner never comes, its oldest message is discarded. Discarded messages of
    synchronised streams are counted in `dropped`, emitted sets in `matched`.

    Latched streams (e.g. `latched=('camera_info',)` for drivers that publish camera_info
    rarely): they never hold a set back once they have delivered a message. A set takes the
    latched message whose stamp is closest to the set's stamp if one is within `tolerance_ns`,
    otherwise the one with the newest stamp, and it stays available for later sets. Until the
    first latched message arrives, complete sets wait in the queues. Because a set is emitted as
    soon as the synchronised streams are complete, a camera_info that carries the image's stamp
    but arrives after the image and the mask is not used for that image (the previous one is);
    with a fixed calibration that makes no difference. Latched messages are not counted in
    `dropped`.

    Time going back: a message of a synchronised stream stamped more than `rewind_ns` before
    the last emitted one (a bag played in a loop, a simulator or driver restart) starts
    synchronisation afresh, as `reset` does but keeping the newest latched message, and counts
    in `rewinds`; later arrivals closer behind it are late and discarded. All methods are
    thread-safe.
    """

    def __init__(self, names: Sequence[str], tolerance_ns: int = 0, queue_size: int = 10,
                 latched: Sequence[str] = (), rewind_ns: int = REWIND_NS) -> None:
        """Synchronise the streams `names`; `latched` names those that are reused (see class)."""
        names = tuple(names)
        if not names or len(set(names)) != len(names):
            raise ValueError(f'stream names must be non-empty and unique, got {names}')
        unknown = [n for n in latched if n not in names]
        if unknown:
            raise ValueError(f'latched streams {unknown} are not among the streams {names}')
        if int(tolerance_ns) < 0:
            raise ValueError(f'tolerance_ns must be >= 0, got {tolerance_ns}')
        if int(queue_size) < 1:
            raise ValueError(f'queue_size must be >= 1, got {queue_size}')
        if int(rewind_ns) < 0:
            raise ValueError(f'rewind_ns must be >= 0, got {rewind_ns}')
        self._names = names
        self._latched = tuple(n for n in names if n in latched)
        self._synced = tuple(n for n in names if n not in latched)
        if not self._synced:
            raise ValueError('at least one stream must not be latched')
        self._tolerance = int(tolerance_ns)
        self._queue_size = int(queue_size)
        self._rewind = int(rewind_ns)
        # Per stream, (stamp_ns, arrival number, msg) sorted by stamp then arrival; the arrival
        # number is unique, so messages themselves are never compared.
        self._queues: dict[str, list[tuple[int, int, Any]]] = {n: [] for n in names}
        self._last: dict[str, int | None] = {n: None for n in self._synced}
        self._arrival = itertools.count()
        self._lock = threading.Lock()
        self.dropped = 0
        """Messages of synchronised streams discarded without being part of a set."""
        self.matched = 0
        """Sets emitted."""
        self.rewinds = 0
        """Times the stamps went back by more than `rewind_ns` (synchronisation restarted)."""

    @property
    def names(self) -> tuple[str, ...]:
        """The stream names, in the order given."""
        return self._names

    def pending(self) -> dict[str, int]:
        """Return the number of queued messages per stream."""
        with self._lock:
            return {n: len(q) for n, q in self._queues.items()}

    def reset(self) -> None:
        """Forget all queued messages and the last emitted stamps (counters are kept)."""
        with self._lock:
            for q in self._queues.values():
                q.clear()
            self._last = {n: None for n in self._synced}

    def add(self, name: str, stamp_ns: int, msg: Any) -> Match | None:
        """Queue `msg` of stream `name` stamped `stamp_ns`; return the set it completes, if any."""
        with self._lock:
            queue = self._queues.get(name)
            if queue is None:
                raise ValueError(f'unknown stream {name!r}; streams are {self._names}')
            stamp = int(stamp_ns)
            synced = name not in self._latched
            last = self._last.get(name)
            if synced and last is not None and stamp < last - self._rewind:
                self.rewinds += 1
                for n, q in self._queues.items():
                    del q[:-1 if n in self._latched else None]
                self._last = {n: None for n in self._synced}
            elif synced and last is not None and stamp <= last:
                self.dropped += 1
                return None
            bisect.insort(queue, (stamp, next(self._arrival), msg))
            if len(queue) > self._queue_size:
                queue.pop(0)
                if synced:
                    self.dropped += 1
            return self._emit()

    def _find(self) -> dict[str, tuple[int, int, Any]] | None:
        """Return the newest complete set of synchronised messages, or None."""
        queues = [self._queues[n] for n in self._synced]
        if not all(queues):
            return None
        # The oldest message of a set is one of the queued ones: try each as the set's start.
        for start in sorted({e[0] for q in queues for e in q}, reverse=True):
            picks = {}
            for n, q in zip(self._synced, queues):
                i = bisect.bisect_left(q, (start,))
                if i == len(q) or q[i][0] > start + self._tolerance:
                    break
                picks[n] = q[i]
            else:
                return picks
        return None

    def _emit(self) -> Match | None:
        if not all(self._queues[n] for n in self._latched):
            return None
        picks = self._find()
        if picks is None:
            return None
        for n, (stamp, _, _) in picks.items():
            q = self._queues[n]
            keep = [e for e in q if e[0] > stamp]
            self.dropped += len(q) - len(keep) - 1
            self._queues[n] = keep
            self._last[n] = stamp
        ref = picks[self._synced[0]][0]
        msgs = {}
        for n in self._names:
            if n in picks:
                msgs[n] = picks[n][2]
                continue
            q = self._queues[n]
            near = min(q, key=lambda e: (abs(e[0] - ref), -e[1]))
            msgs[n] = near[2] if abs(near[0] - ref) <= self._tolerance else q[-1][2]
        self.matched += 1
        return Match(ref, msgs)
