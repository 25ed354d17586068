"""AdaIN decoder training speed: the default configuration against a plain fp32 loop.

    python benchmarks/train_speed.py [--batch-size 8] [--crop-size 256] [--iterations 4]

Both loops run `stylenorm.training.loop.train_step` on the same AdaIN task (a randomly initialised
encoder and decoder, the same weights for both, random batches already in memory, so the data
pipeline is not timed), at equal batch and crop size, in one process. "default" is what
``stylenorm train adain`` uses on the device (bf16 autocast on CPUs with native bf16 and on
GPUs, channels-last); "plain" is fp32 in contiguous memory. The two alternate ``--repeats``
times and the best rate of each is kept, so a busy machine penalises both alike. Prints the
processor, iterations per second of each, and the speed-up. Runs on the CPU, and also on the
GPU when one is available.
"""

from __future__ import annotations

import argparse
import copy
import time

import torch

from stylenorm.models.decoder import AdaINDecoder, DecoderConfig
from stylenorm.models.vgg import VGGEncoder
from stylenorm.runtime import processor_name, training_dtype
from stylenorm.training.adain import AdaINTask, AdaINTrainConfig
from stylenorm.training.loop import train_step


def make_task(encoder: VGGEncoder, decoder: AdaINDecoder, device: torch.device,
              dtype: torch.dtype, channels_last: bool) -> AdaINTask:
    config = AdaINTrainConfig(channels_last=channels_last)
    task = AdaINTask(config, copy.deepcopy(encoder), copy.deepcopy(decoder),
                     samples=(torch.empty(0), torch.empty(0)))
    task.prepare(device, dtype, channels_last)
    return task


def rate(task: AdaINTask, batches, dtype: torch.dtype, device: torch.device, steps: int) -> float:
    """Iterations per second over ``steps`` steps after one warm-up step."""
    optimizer = torch.optim.Adam(task.trainable(), lr=1e-4)
    scaler = torch.amp.GradScaler(device.type, enabled=dtype == torch.float16)

    def step(i: int) -> None:
        train_step(task, batches[i % len(batches)], optimizer, scaler, (device, dtype), 1e-4, i)

    step(0)
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    for i in range(steps):
        step(i + 1)
    if device.type == "cuda":
        torch.cuda.synchronize()
    return steps / (time.perf_counter() - start)


def compare(device: torch.device, batch_size: int, crop: int, steps: int, repeats: int) -> None:
    torch.manual_seed(0)
    encoder, decoder = VGGEncoder(), AdaINDecoder(DecoderConfig())
    dtype = training_dtype("auto", device)
    batches = [[torch.rand(batch_size, 3, crop, crop, device=device) for _ in range(2)]
               for _ in range(2)]
    cl_batches = [[b.contiguous(memory_format=torch.channels_last) for b in pair]
                  for pair in batches]
    best = {"plain": 0.0, "default": 0.0}
    for _ in range(repeats):
        plain = make_task(encoder, decoder, device, torch.float32, False)
        best["plain"] = max(best["plain"], rate(plain, batches, torch.float32, device, steps))
        default = make_task(encoder, decoder, device, dtype, True)
        best["default"] = max(best["default"], rate(default, cl_batches, dtype, device, steps))
    name = str(dtype).removeprefix("torch.")
    print(f"{device.type}: {processor_name(device)}; torch {torch.__version__}; "
          f"threads {torch.get_num_threads()}; batch {batch_size}, crop {crop}px")
    print(f"  plain fp32 contiguous:       {best['plain']:.3f} it/s")
    print(f"  default ({name}, channels-last): {best['default']:.3f} it/s   "
          f"speed-up {best['default'] / best['plain']:.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--crop-size", type=int, default=256)
    parser.add_argument("--iterations", type=int, default=3, help="timed steps per repeat")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--no-gpu", action="store_true", help="skip the GPU even if present")
    parser.add_argument("--threads", type=int, default=0, help="CPU threads (0: torch default)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    devices = [torch.device("cpu")]
    if torch.cuda.is_available() and not args.no_gpu:
        devices.append(torch.device("cuda"))
    for device in devices:
        compare(device, args.batch_size, args.crop_size, args.iterations, args.repeats)


if __name__ == "__main__":
    main()
