"""Request ids are version-4 UUIDs, as `uuid.uuid4().hex` spells them, never repeated, in a forked child too."""

import os
import uuid

from server.support.ids import request_id


def test_a_request_id_is_a_random_version_4_uuid_in_32_hex_digits() -> None:
    ids = [request_id() for _ in range(20_000)]
    assert len(set(ids)) == len(ids)
    for made in ids:
        parsed = uuid.UUID(hex=made)
        assert parsed.hex == made and parsed.version == 4 and parsed.variant == uuid.RFC_4122


def test_a_forked_child_draws_ids_of_its_own_not_its_parents_next_ones() -> None:
    request_id()  # the parent holds a batch, most of it unused
    read, write = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover - the child process
        os.write(write, "".join(request_id() for _ in range(8)).encode())
        os._exit(0)
    os.close(write)
    os.waitpid(child, 0)
    with os.fdopen(read, "rb") as pipe:
        theirs = pipe.read().decode()
    ours = "".join(request_id() for _ in range(8))
    assert len(theirs) == len(ours) == 8 * 32
    assert theirs != ours
