"""Start-up time of the command line: ``insvp --help`` against ``python -c "import torch"``, side by side.

Every ``--help``, usage error and shell completion pays this cost, so the command line must not import
torch (or timm) before a command runs. Each is started as a fresh process, best of ``--repeat`` runs;
the ratio is the acceptance number (target: at most 0.2), and the exit status is 1 when it is missed.

    python benchmarks/startup.py
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import time
from pathlib import Path

TARGET = 0.2


def best_of(command: list[str], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="runs of each command; the best counts")
    args = parser.parse_args()
    script = shutil.which("insvp") or str(Path(sys.executable).with_name("insvp"))
    rows = {
        "insvp --help": best_of([script, "--help"], args.repeat),
        "insvp train --help": best_of([script, "train", "--help"], args.repeat),
        'python -c "import torch"': best_of([sys.executable, "-c", "import torch"], args.repeat),
    }
    for name, seconds in rows.items():
        print(f"{name:28s} {seconds:6.3f} s  (best of {args.repeat})")
    ratio = rows["insvp --help"] / rows['python -c "import torch"']
    print(f"insvp --help / import torch = {ratio:.3f} (target <= {TARGET})")
    return 0 if ratio <= TARGET else 1


if __name__ == "__main__":
    sys.exit(main())
