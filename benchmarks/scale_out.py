"""Scale-out on this machine: one process against two torchrun ranks, for training and batch.

    python benchmarks/scale_out.py [--global-batch 4] [--crop-size 64] [--iterations 20]
                                   [--size 256] [--pairs-from samples]

Training: ``stylenorm train adain`` on ``samples/content`` and ``samples/style`` (needs the
installed ``vgg19-normalised`` encoder), the same global batch each way: one process with one
thread, one process with two threads, and ``torchrun --nproc-per-node 2`` with one thread per
rank at half the batch each. The rate is iterations per second of the training loop as the
model's provenance records it (``wall_time_s``: start-up and model loading are not counted).
Batch: ``stylenorm batch`` of every content x style pair at ``--size``, the same three ways,
timed end to end (start-up included, as a user waits for it). Each configuration runs
``--repeats`` times, alternating, and its best is kept. Prints the processor, its cores and the
load average before and after (another job on the machine shows up there).
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def command(ranks: int, *args: str) -> list[str]:
    if ranks == 1:
        return [sys.executable, "-m", "stylenorm", *args]
    return [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", str(ranks),
            "--master-addr", "127.0.0.1", "--master-port", str(free_port()), "-m", "stylenorm",
            *args]


def run(cmd: list[str], threads: int) -> float:
    """Seconds ``cmd`` took; fails loudly if it fails."""
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": str(threads)}
    start = time.perf_counter()
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=REPO)
    if done.returncode:
        sys.exit(f"failed: {' '.join(cmd)}\n{done.stderr[-3000:]}")
    return time.perf_counter() - start


def train_rate(ranks: int, threads: int, args, out: Path) -> float:
    """Training iterations per second (of the global batch)."""
    run(command(ranks, "train", "adain", "--content", str(args.samples / "content"),
                "--style", str(args.samples / "style"), "--out", str(out),
                "--iterations", str(args.iterations), "--batch-size",
                str(args.global_batch // ranks), "--crop-size", str(args.crop_size),
                "--checkpoint-every", str(args.iterations), "--sample-every", "0",
                "--workers", "0", "--threads", str(threads), "--no-progress"), threads)
    from stylenorm.hub.files import read_meta

    return args.iterations / read_meta(out / "model.safetensors").provenance["wall_time_s"]


def batch_seconds(ranks: int, threads: int, args, out: Path) -> float:
    return run(command(ranks, "batch", str(args.samples / "content"), str(args.samples / "style"),
                       "-o", str(out), "--size", str(args.size), "--style-size", str(args.size),
                       "--threads", str(threads), "--no-progress"), threads)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--global-batch", type=int, default=4)
    parser.add_argument("--crop-size", type=int, default=64)
    parser.add_argument("--iterations", type=int, default=20)
    parser.add_argument("--size", type=int, default=256, help="batch: content/style side")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--samples", type=Path, default=REPO / "samples")
    args = parser.parse_args()
    from stylenorm.runtime import processor_name

    configs = [(1, 1), (1, 2), (2, 1)]  # (processes, threads per process)
    pairs = len(os.listdir(args.samples / "content")) * len(os.listdir(args.samples / "style"))
    print(f"processor: {processor_name()}, {os.cpu_count()} cores; "
          f"load average before: {os.getloadavg()[0]:.2f}")
    best_train: dict = {}
    best_batch: dict = {}
    with tempfile.TemporaryDirectory() as scratch:
        for repeat in range(args.repeats):
            for ranks, threads in configs:
                name = f"{ranks}x{threads}"
                folder = Path(scratch) / f"{name}-{repeat}"
                rate = train_rate(ranks, threads, args, folder / "run")
                best_train[name] = max(best_train.get(name, 0.0), rate)
                seconds = batch_seconds(ranks, threads, args, folder / "out")
                best_batch[name] = min(best_batch.get(name, float("inf")), seconds)
    print(f"train adain: global batch {args.global_batch}, crop {args.crop_size} px, "
          f"{args.iterations} iterations (best of {args.repeats})")
    base = best_train["1x1"]
    for ranks, threads in configs:
        name = f"{ranks}x{threads}"
        print(f"  {ranks} process(es) x {threads} thread(s): {best_train[name]:.3f} it/s "
              f"({best_train[name] * args.global_batch:.2f} images/s), "
              f"{best_train[name] / base:.2f}x")
    print(f"batch: {pairs} pairs at {args.size} px, end to end (best of {args.repeats})")
    base = best_batch["1x1"]
    for ranks, threads in configs:
        name = f"{ranks}x{threads}"
        print(f"  {ranks} process(es) x {threads} thread(s): {best_batch[name]:.1f} s "
              f"({pairs / best_batch[name]:.2f} images/s), {base / best_batch[name]:.2f}x")
    print(f"load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
