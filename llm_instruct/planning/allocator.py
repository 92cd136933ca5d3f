"""Keep freed memory for the next step instead of handing it back to the system.

glibc's malloc serves every block over 32 MB (and, once freed blocks have raised its limit,
over a few MB) straight from the kernel and returns it on free. A training step frees and
allocates the same large tensors every time (gradients, 16-bit casts of the weights, the
output layer's 200 MB gradient), so each step page-faults them in again: on the 350m shape a
sixth of a CPU step went to that, and the returned blocks left the heap fragmented enough to
raise the peak. With a high threshold for direct allocations and no trimming, freed blocks
stay in the heap and the next step reuses them; measured on the 350m shape, one epoch took
30 s instead of 36 s and peaked at 6.5 instead of 6.6 GiB (docs/benchmark.md). Elsewhere
than glibc (macOS, Windows, musl) nothing changes.
"""

import ctypes

# mallopt's parameter numbers (malloc.h).
M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
# Blocks up to this size come from the heap; larger ones still go to the kernel directly.
HEAP_UP_TO = 512 * 2**20
NEVER_TRIM = 2**31 - 1  # mallopt takes an int


def glibc():
    """The process's C library where it has mallopt (glibc), else None."""
    try:
        library = ctypes.CDLL(None)
    except (OSError, TypeError):  # Windows has no such handle
        return None
    return library if hasattr(library, "mallopt") else None


def keep_freed_memory(library=None) -> bool:
    """Tell glibc's malloc to keep large freed blocks for reuse; whether it took the settings."""
    library = library if library is not None else glibc()
    if library is None:
        return False
    return bool(library.mallopt(M_MMAP_THRESHOLD, HEAP_UP_TO)) and bool(library.mallopt(M_TRIM_THRESHOLD, NEVER_TRIM))
