"""The C heap of a long-running process gives back what it no longer uses (core.gc_tuning)."""

import subprocess
import sys

from tests.processes import ROOT

FRAGMENTED_HEAP = """
import sys
from core.gc_tuning import trim_heap

def rss_mb():
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024

# 200 MB in blocks of 2 KB (below the size glibc maps apart), then all freed but one at the top of the
# heap: the heap cannot shrink past it, so glibc keeps the freed pages resident.
blocks = [bytes(2048) for _ in range(100_000)]
top = bytes(2048)
del blocks
before = rss_mb()
trim_heap()
print(before, rss_mb())
"""


def test_trimming_hands_the_heaps_free_pages_back_to_the_system():
    out = subprocess.run([sys.executable, "-c", FRAGMENTED_HEAP], cwd=ROOT, capture_output=True, text=True,
                         check=True).stdout
    before, after = map(float, out.split())
    assert before > 200 and after < before - 150, (before, after)
