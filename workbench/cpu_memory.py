"""Keeping a CPU process's memory to what its tensors use: glibc's heap and oneDNN's kernels.

Passes over clips of many lengths (laptop mode's cache, the encoder cache) and steps over
batches of many shapes leave memory behind that no tensor uses: the allocator keeps freed
buffers of each size, and oneDNN keeps a compiled kernel for every input shape it saw
(bench/RESULTS.md, issue 15).
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from contextlib import contextmanager

import torch


def release_freed_memory() -> None:
    """Hand memory the allocator holds but no tensor uses back to the system (glibc's
    ``malloc_trim``; nothing elsewhere). Each clip's forward pass allocates buffers of its own
    length; without this the heap keeps growing over clips of many lengths, well past what
    any one clip needs."""
    trim = _malloc_trim()
    if trim is not None:
        trim(0)


@functools.cache
def _malloc_trim():
    import ctypes
    import ctypes.util

    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").malloc_trim
    except (OSError, AttributeError):
        return None


@contextmanager
def without_onednn() -> Iterator[None]:
    """Run the block on torch's native CPU kernels: oneDNN keeps a compiled kernel for every
    input length, and clips come in many (caching demo-base's states for 144 clips left
    92-99 MiB behind with it, 32-36 MiB without, and ran faster). Only this flag changes
    (``torch.backends.mkldnn.flags`` also resets the TF32 and precision flags, with a
    warning about Intel GPUs)."""
    was = torch.backends.mkldnn.enabled
    torch.backends.mkldnn.enabled = False
    try:
        yield
    finally:
        torch.backends.mkldnn.enabled = was
