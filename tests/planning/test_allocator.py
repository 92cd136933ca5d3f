"""The allocator settings reach glibc's mallopt, and elsewhere nothing happens."""

from llm_instruct.planning.allocator import (
    HEAP_UP_TO,
    M_MMAP_THRESHOLD,
    M_TRIM_THRESHOLD,
    NEVER_TRIM,
    keep_freed_memory,
)


class FakeGlibc:
    def __init__(self, accepts: bool):
        self.calls, self.accepts = [], accepts

    def mallopt(self, parameter, value):
        self.calls.append((parameter, value))
        return int(self.accepts)


def test_large_freed_blocks_stay_in_the_heap():
    library = FakeGlibc(accepts=True)
    assert keep_freed_memory(library)
    assert library.calls == [(M_MMAP_THRESHOLD, HEAP_UP_TO), (M_TRIM_THRESHOLD, NEVER_TRIM)]


def test_a_library_that_refuses_is_reported():
    assert not keep_freed_memory(FakeGlibc(accepts=False))
