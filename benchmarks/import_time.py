"""Time ``import mmrefine`` and ``mmrefine --help`` in fresh processes (best of 5 each).

    python benchmarks/import_time.py
"""

from __future__ import annotations

import subprocess
import sys
import time


def best(cmd: list[str], n: int = 5) -> float:
    times = []
    for _ in range(n):
        t = time.perf_counter()
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
        times.append(time.perf_counter() - t)
    return min(times)


def main() -> None:
    bare = best([sys.executable, "-c", "pass"])
    imp = best([sys.executable, "-c", "import mmrefine"])
    helped = best([sys.executable, "-m", "mmrefine.cli", "--help"])
    torch = best([sys.executable, "-c", "import torch"])
    print(f"python -c pass:         {bare:.3f} s")
    print(f"import mmrefine:        {imp:.3f} s")
    print(f"mmrefine --help:        {helped:.3f} s")
    print(f"import torch (for scale): {torch:.3f} s")


if __name__ == "__main__":
    main()
