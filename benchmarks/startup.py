"""Start-up cost of the command line: wall time and peak resident memory of each command in a
child process of its own, beside ``python -c "import torch"`` measured in the same run.

    python benchmarks/startup.py [--repeat 3]

Each command runs ``--repeat`` times; the table shows the fastest wall time (the least
disturbed by other work on the machine) and the peak RSS of that child (``ru_maxrss`` from
``os.wait4``, Linux and macOS). The stylise row writes a 512 px result of a shipped sample with
the shipped lite model into a temporary folder.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SAMPLES = REPO / "samples"


def measure(argv: list[str], code: int = 0) -> tuple[float, float]:
    """(wall seconds, peak RSS in MB) of one child running ``argv``, which must exit ``code``."""
    start = time.perf_counter()
    child = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(child.pid, 0)
    wall = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != code:
        raise SystemExit(f"{' '.join(argv)} failed: {child.stderr.read().decode()[-500:]}")
    scale = 1 if sys.platform == "darwin" else 1024  # ru_maxrss: bytes on macOS, KiB on Linux
    return wall, usage.ru_maxrss * scale / 2**20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    cli = [sys.executable, "-m", "stylenorm"]
    with tempfile.TemporaryDirectory() as folder:
        rows = {
            "stylenorm --help": cli + ["--help"],
            "stylenorm --version": cli + ["--version"],
            "stylenorm stylize --bogus (usage error)": cli + ["stylize", "--bogus"],
            "stylenorm stylize, 512 px, lite": cli + [
                "stylize", str(SAMPLES / "content" / "cat.jpg"),
                str(SAMPLES / "style" / "strokes.png"), "-o", str(Path(folder) / "out.jpg"),
                "--size", "512", "--device", "cpu"],
            'python -c "import torch"': [sys.executable, "-c", "import torch"],
        }
        print(f"{'command':<42} {'wall s':>8} {'peak RSS MB':>12}")
        for name, argv in rows.items():
            code = 2 if "bogus" in name else 0  # a usage error exits with 2
            runs = [measure(argv, code) for _ in range(args.repeat)]
            wall, rss = min(runs)
            print(f"{name:<42} {wall:>8.2f} {rss:>12.0f}")


if __name__ == "__main__":
    main()
