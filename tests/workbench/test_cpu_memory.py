"""CPU memory helpers: oneDNN off for a block (and only that), the heap handed back."""

import sys
import warnings

import pytest
import torch

from workbench.cpu_memory import release_freed_memory, without_onednn


def flags() -> tuple:
    return (torch.backends.mkldnn.enabled, torch.backends.mkldnn.deterministic,
            torch._C._get_onednn_allow_tf32())


def test_without_onednn_changes_only_that_flag_and_restores_it_after_an_error():
    before = flags()
    assert before[0]  # oneDNN is on by default in the CPU build
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # torch's mkldnn.flags() warns about Intel GPUs
        with pytest.raises(RuntimeError, match="inside"):
            with without_onednn():
                assert flags() == (False, *before[1:])
                conv = torch.nn.Conv1d(1, 2, 3)
                assert conv(torch.ones(1, 1, 8)).shape == (1, 2, 6)  # native kernels run
                raise RuntimeError("inside")
    assert flags() == before


def rss_mib() -> float:
    with open("/proc/self/status", encoding="ascii") as status:
        return int(next(ln for ln in status if ln.startswith("VmRSS:")).split()[1]) / 1024


@pytest.mark.skipif(sys.platform != "linux", reason="glibc's malloc_trim and /proc")
def test_freed_memory_below_a_live_buffer_is_handed_back():
    """Buffers freed below one still in use stay in the heap until handed back."""
    buffers = [torch.ones(16_000) for _ in range(2000)]  # 64 KB each, 128 MB on the heap
    last = buffers[-1]
    del buffers
    held = rss_mib()
    release_freed_memory()
    assert held - rss_mib() > 64
    assert last.sum() == 16_000
