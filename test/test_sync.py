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

"""StampSynchronizer: exact and tolerant matching, ordering, bounded queues, latched streams."""

import threading

import pytest

from rrb_ros.ros.sync import Match, StampSynchronizer

MS = 1_000_000  # ns


def feed(sync, events):
    """Add (name, stamp) events (message = (name, stamp)); return the emitted matches."""
    out = []
    for name, stamp in events:
        match = sync.add(name, stamp, (name, stamp))
        if match is not None:
            out.append(match)
    return out


def test_in_order_exact():
    sync = StampSynchronizer(('image', 'mask'))
    assert sync.add('image', 10, 'i10') is None
    match = sync.add('mask', 10, 'm10')
    assert match == Match(10, {'image': 'i10', 'mask': 'm10'})
    assert list(match.msgs) == ['image', 'mask']
    stamp, msgs = match  # a plain tuple too
    assert stamp == 10
    assert (sync.matched, sync.dropped) == (1, 0)
    assert sync.pending() == {'image': 0, 'mask': 0}


def test_stream_order_of_result_follows_names():
    sync = StampSynchronizer(('image', 'mask', 'camera_info'))
    (match,) = feed(sync, [('camera_info', 5), ('mask', 5), ('image', 5)])
    assert list(match.msgs) == ['image', 'mask', 'camera_info']


def test_out_of_order_arrival():
    sync = StampSynchronizer(('image', 'mask'))
    # masks come late and in a different order than the images
    matches = feed(sync, [('image', 1), ('image', 2), ('image', 3),
                          ('mask', 2), ('mask', 3)])
    assert [m.stamp_ns for m in matches] == [2, 3]
    assert sync.dropped == 1  # image 1 can no longer be emitted after 2
    assert sync.add('mask', 1, 'late') is None  # older than the last emitted set
    assert (sync.matched, sync.dropped) == (2, 2)


def test_late_partner_within_queue_is_matched():
    sync = StampSynchronizer(('image', 'mask'))
    matches = feed(sync, [('image', 2), ('image', 1), ('mask', 1), ('mask', 2)])
    assert [m.stamp_ns for m in matches] == [1, 2]
    assert sync.dropped == 0


def test_missing_partner_is_dropped_and_memory_is_bounded():
    sync = StampSynchronizer(('image', 'mask'), queue_size=4)
    for t in range(100):
        assert sync.add('image', t, t) is None
        assert sync.pending()['image'] <= 4
    assert sync.dropped == 96 and sync.matched == 0
    # a mask for one of the four newest images still matches; older ones are dropped
    match = sync.add('mask', 98, 'm')
    assert match.msgs['image'] == 98
    assert sync.dropped == 96 + 2 and sync.pending() == {'image': 1, 'mask': 0}


def test_masks_for_every_other_frame():
    sync = StampSynchronizer(('image', 'mask'))
    events = []
    for t in range(0, 20):
        events.append(('image', t))
        if t % 2 == 0:
            events.append(('mask', t))
    matches = feed(sync, events)
    assert [m.stamp_ns for m in matches] == list(range(0, 20, 2))
    assert sync.dropped == 9  # images 1, 3, ..., 17; image 19 is still queued
    assert sync.pending()['image'] == 1


def test_tolerance():
    sync = StampSynchronizer(('image', 'mask'), tolerance_ns=5 * MS)
    assert sync.add('image', 100 * MS, 'i') is None
    assert sync.add('mask', 106 * MS, 'm_far') is None  # 6 ms apart
    match = sync.add('mask', 103 * MS, 'm')
    assert match.msgs == {'image': 'i', 'mask': 'm'}
    assert match.stamp_ns == 100 * MS  # the stamp of the first stream (image)
    # the mask at 106 ms waits for its image
    match = sync.add('image', 110 * MS, 'i2')
    assert match.msgs == {'image': 'i2', 'mask': 'm_far'} and match.stamp_ns == 110 * MS


def test_tolerance_zero_is_exact():
    sync = StampSynchronizer(('image', 'mask'))
    assert feed(sync, [('image', 100), ('mask', 101)]) == []


def test_all_stamps_within_tolerance_of_each_other():
    sync = StampSynchronizer(('a', 'b', 'c'), tolerance_ns=10)
    # a=0 and c=20 are each within 10 of b=10 but 20 apart: not a set
    assert feed(sync, [('a', 0), ('b', 10), ('c', 20)]) == []
    (match,) = feed(sync, [('a', 15)])
    assert match.msgs == {'a': ('a', 15), 'b': ('b', 10), 'c': ('c', 20)}


def test_newest_complete_set_wins():
    sync = StampSynchronizer(('image', 'mask', 'camera_info'), latched=('camera_info',))
    # complete image/mask pairs wait for the first camera_info; then the newest one is emitted
    assert feed(sync, [('image', 1), ('mask', 1), ('image', 2), ('mask', 2)]) == []
    (match,) = feed(sync, [('camera_info', 0)])
    assert match.stamp_ns == 2 and sync.dropped == 2


def test_latched_camera_info():
    sync = StampSynchronizer(('image', 'mask', 'camera_info'), latched=('camera_info',))
    matches = feed(sync, [('camera_info', 0)] + [(n, t) for t in (1, 2, 3)
                                                  for n in ('image', 'mask')])
    assert [m.msgs['camera_info'] for m in matches] == [('camera_info', 0)] * 3
    # a camera_info with the set's stamp wins over the newer and the older ones
    feed(sync, [('camera_info', 4), ('camera_info', 6), ('camera_info', 5)])
    (match,) = feed(sync, [('image', 5), ('mask', 5)])
    assert match.msgs['camera_info'] == ('camera_info', 5)
    # otherwise the newest stamp
    (match,) = feed(sync, [('mask', 7), ('image', 7)])
    assert match.msgs['camera_info'] == ('camera_info', 6)
    # latched messages are never dropped by a match and their queue is bounded
    assert sync.dropped == 0 and sync.pending()['camera_info'] == 4
    feed(sync, [('camera_info', t) for t in range(100, 120)])
    assert sync.pending()['camera_info'] == 10 and sync.dropped == 0


def test_latched_with_tolerance():
    sync = StampSynchronizer(('image', 'camera_info'), tolerance_ns=3, latched=('camera_info',))
    feed(sync, [('camera_info', 0), ('camera_info', 98), ('camera_info', 200)])
    (match,) = feed(sync, [('image', 100)])
    assert match.msgs['camera_info'] == ('camera_info', 98)
    (match,) = feed(sync, [('image', 150)])
    assert match.msgs['camera_info'] == ('camera_info', 200)  # none near: newest


def test_single_stream_passes_through():
    sync = StampSynchronizer(('image',))
    assert [m.stamp_ns for m in feed(sync, [('image', 1), ('image', 2)])] == [1, 2]


def test_reset_after_time_jump():
    sync = StampSynchronizer(('image', 'mask'), rewind_ns=10_000)
    feed(sync, [('image', 1000), ('mask', 1000)])
    assert feed(sync, [('image', 1), ('mask', 1)]) == []  # within rewind_ns: late messages
    sync.reset()
    assert [m.stamp_ns for m in feed(sync, [('image', 1), ('mask', 1)])] == [1]
    assert sync.matched == 2 and sync.rewinds == 0


def test_time_going_back_restarts_synchronisation():
    # a bag played in a loop: stamps go back by far more than rewind_ns
    sync = StampSynchronizer(('image', 'mask', 'camera_info'), latched=('camera_info',),
                             rewind_ns=500 * MS)
    loop = [('camera_info', 0)] + [(n, t * 100 * MS) for t in range(1, 30)
                                   for n in ('image', 'mask')]
    assert len(feed(sync, loop)) == 29
    feed(sync, [('image', 2800 * MS)])  # queued: its mask never comes
    # the second loop: its first image restarts synchronisation (the camera_info is kept)
    second = feed(sync, loop[1:])
    assert [m.stamp_ns for m in second] == [t * 100 * MS for t in range(1, 30)]
    assert second[0].msgs['camera_info'] == ('camera_info', 0)
    assert sync.rewinds == 1 and sync.matched == 58
    # a message only a little older than the last emitted one is late, not a new loop
    assert feed(sync, [('image', 2500 * MS), ('mask', 2500 * MS)]) == []
    assert sync.rewinds == 1


def test_repeated_stamps_are_duplicates():
    # a client that never sets header.stamp: all zero; only the first set is emitted
    sync = StampSynchronizer(('image', 'mask'))
    assert len(feed(sync, [('image', 0), ('mask', 0)] * 3)) == 1
    assert sync.rewinds == 0 and sync.dropped == 4


@pytest.mark.parametrize('kwargs, match', [
    (dict(names=()), 'non-empty and unique'),
    (dict(names=('a', 'a')), 'non-empty and unique'),
    (dict(names=('a',), latched=('b',)), r"\['b'\] are not among"),
    (dict(names=('a',), latched=('a',)), 'at least one stream'),
    (dict(names=('a',), tolerance_ns=-1), 'tolerance_ns'),
    (dict(names=('a',), queue_size=0), 'queue_size'),
    (dict(names=('a',), rewind_ns=-1), 'rewind_ns'),
])
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        StampSynchronizer(**kwargs)


def test_unknown_stream():
    with pytest.raises(ValueError, match="unknown stream 'depth'"):
        StampSynchronizer(('image', 'mask')).add('depth', 0, None)


def test_messages_are_never_compared():
    class Opaque:
        def __eq__(self, other):
            raise AssertionError('messages must not be compared')

        __lt__ = __eq__

    sync = StampSynchronizer(('image', 'mask'))
    for _ in range(3):
        sync.add('image', 5, Opaque())  # same stamp three times
    assert sync.add('mask', 5, Opaque()) is not None
    assert sync.dropped == 2


def test_thread_safety():
    sync = StampSynchronizer(('image', 'mask'), queue_size=2000)
    results = []

    def producer(name):
        for t in range(1000):
            match = sync.add(name, t, t)
            if match is not None:
                results.append(match.stamp_ns)

    threads = [threading.Thread(target=producer, args=(n,)) for n in ('image', 'mask')]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert sorted(results) == list(range(1000)) and sync.matched == 1000
    assert sync.dropped == 0
