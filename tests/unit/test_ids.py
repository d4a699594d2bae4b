"""Journal ids: random version-4 UUIDs from buffered blocks, never handed out twice."""

import os
import threading
from uuid import UUID

from ledger.core import limits
from ledger.service.ids import random_uuid4

_DRAWS = 10 * limits.random_id_block_count + 3  # several blocks, and part of one more


def test_ids_are_version_4_rfc_4122_uuids():
    """Every id has the version nibble 4 and the RFC 4122 variant, as uuid4's do."""
    for _ in range(_DRAWS):
        new_id = random_uuid4()
        assert isinstance(new_id, UUID)
        assert new_id.version == 4
        assert new_id.variant == "specified in RFC 4122"
        assert UUID(str(new_id)) == new_id


def test_ids_are_distinct_across_many_draws():
    """No id repeats over many blocks of draws."""
    drawn = [random_uuid4() for _ in range(_DRAWS)]
    assert len(set(drawn)) == len(drawn)


def test_ids_drawn_on_several_threads_are_all_distinct():
    """Threads drawing at once never share a block: every id of every thread is distinct."""
    threads_count = 8
    drawn: list[list[UUID]] = [[] for _ in range(threads_count)]
    start = threading.Barrier(threads_count)

    def draw(into: list[UUID]) -> None:
        start.wait()
        into.extend(random_uuid4() for _ in range(_DRAWS))

    threads = [threading.Thread(target=draw, args=(ids,)) for ids in drawn]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    every = [new_id for ids in drawn for new_id in ids]
    assert len(every) == threads_count * _DRAWS
    assert len(set(every)) == len(every)


def test_a_forked_child_never_reuses_its_parents_buffered_ids():
    """After a fork the child draws a fresh block: the parent's unused ids stay the parent's."""
    random_uuid4()  # the parent now holds a partly used block
    reading, writing = os.pipe()
    child = os.fork()
    if child == 0:  # the child: report its next ids and leave at once
        os.close(reading)
        ids = b"".join(random_uuid4().bytes for _ in range(limits.random_id_block_count))
        os.write(writing, ids)
        os._exit(0)
    os.close(writing)
    with os.fdopen(reading, "rb") as pipe:
        data = pipe.read()
    os.waitpid(child, 0)
    size = 16
    child_ids = {UUID(bytes=data[i : i + size]) for i in range(0, len(data), size)}
    parent_ids = {random_uuid4() for _ in range(limits.random_id_block_count)}
    assert len(child_ids) == limits.random_id_block_count
    assert not child_ids & parent_ids
