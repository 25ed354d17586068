"""Scale-out on CPU: two gloo processes on localhost against one process with the whole batch,
the batch split among ranks and shards, and killed ranks, shards and trainings that a re-run
completes. Every multi-process step has a timeout, so a hang fails instead of blocking."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from conftest import REPO, make_image
from PIL import Image

from stylenorm.errors import OptionError, StylenormError
from stylenorm.hub.files import read_meta
from stylenorm.inference.batchplan import plan_folders
from stylenorm.inference.shards import share_of, split_jobs
from stylenorm.nn.norms import BatchNorm2d, SwitchableNorm2d
from stylenorm.nn.sync import sync_batch_statistics
from stylenorm.ranks import Place, from_environment, parse_shard
from stylenorm.training.adain import AdaINTrainConfig, build_adain_task
from stylenorm.training.distributed import DataParallelTask
from stylenorm.training.inputs import crop_data, find_inputs
from stylenorm.training.loop import load_frozen_encoder, train_step

pytestmark = pytest.mark.usefixtures("one_thread")
TIMEOUT = 120  # seconds for any multi-process step


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def spawn(function, *args, world: int = 2) -> None:
    """``function(rank, world, port, *args)`` in ``world`` processes; fails on error or hang."""
    context = mp.spawn(function, args=(world, free_port(), *args), nprocs=world, join=False)
    deadline = time.monotonic() + TIMEOUT
    while not context.join(timeout=1):
        if time.monotonic() > deadline:
            for process in context.processes:
                process.kill()
            pytest.fail(f"{function.__name__} did not finish in {TIMEOUT} s")


def join_group(rank: int, world: int, port: int) -> None:
    os.environ.update(RANK=str(rank), WORLD_SIZE=str(world), LOCAL_RANK=str(rank),
                      MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), OMP_NUM_THREADS="1")
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=world)


def environment(home: Path) -> dict:
    return {**os.environ, "PYTHONPATH": str(REPO), "STYLENORM_HOME": str(home),
            "OMP_NUM_THREADS": "1"}


def torchrun(*args: str, nproc: int = 2) -> list[str]:
    return [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", str(nproc),
            "--master-addr", "127.0.0.1", "--master-port", str(free_port()), "-m", "stylenorm",
            *args]


def stylenorm(*args: str) -> list[str]:
    return [sys.executable, "-m", "stylenorm", *args]


def run(command: list[str], home: Path) -> subprocess.CompletedProcess:
    return subprocess.run(command, env=environment(home), capture_output=True, text=True,
                          timeout=TIMEOUT, cwd=REPO)


# --- places and shards ----------------------------------------------------------------------

def test_places_from_the_environment_and_shards():
    assert from_environment({}) == Place(0, 1, 0)
    assert from_environment({"RANK": "3", "WORLD_SIZE": "4", "LOCAL_RANK": "1"}) == Place(3, 4, 1)
    with pytest.raises(StylenormError, match="RANK=4 and WORLD_SIZE=4"):
        from_environment({"RANK": "4", "WORLD_SIZE": "4"})
    assert parse_shard("1/3") == Place(1, 3) and parse_shard(" 0/1 ") == Place(0, 1)
    for text, problem in [("3/2", "0..N-1"), ("2/2", "0..N-1"), ("x", "I/N"), ("1/", "I/N"),
                          ("-1/2", "I/N"), ("0/0", "N >= 1")]:
        with pytest.raises(OptionError, match=problem):
            parse_shard(text)
    assert Place(1, 2).within(Place(2, 3)) == Place(5, 6)  # rank 1 of 2 inside shard 2 of 3


def make_pairs(root: Path, contents: int = 5, styles: int = 3, size: int = 32):
    for i in range(contents):
        make_image(root / "content" / f"c{i}.png", (size + 8 * i, size), seed=i)
    for i in range(styles):
        make_image(root / "style" / f"s{i}.png", (size, size), seed=50 + i)
    return root / "content", root / "style"


@pytest.mark.parametrize("parts", [1, 2, 3, 4, 7, 20])
def test_the_split_covers_every_pair_exactly_once_and_balances_pixels(tmp_path, parts):
    content, style = make_pairs(tmp_path, contents=6)
    jobs = plan_folders(content, style, tmp_path / "out")
    shares = [share_of(jobs, Place(i, parts), 0, False) for i in range(parts)]
    flat = [job for share in shares for job in share]
    assert sorted(flat, key=str) == sorted(jobs, key=str) and len(flat) == len(set(flat))
    assert shares == [share_of(jobs, Place(i, parts), 0, False) for i in range(parts)]
    if 1 < parts <= 6:  # whole contents: each is encoded by one part only
        owners = {job.content: i for i, share in enumerate(shares) for job in share}
        assert all(owners[job.content] == i for i, share in enumerate(shares) for job in share)
    pixels = [sum(Image.open(j.content).width * Image.open(j.content).height for j in share)
              for share in shares]
    biggest_unit = max(Image.open(p).width * Image.open(p).height * 3
                       for p in {j.content for j in jobs})
    if parts <= 6:
        assert max(pixels) - min(pixels) <= biggest_unit


def test_ranks_inside_shards_are_a_finer_split(tmp_path):
    content, style = make_pairs(tmp_path, contents=4)
    jobs = plan_folders(content, style, tmp_path / "out")
    finer = [share_of(jobs, Place(rank, 2).within(Place(shard, 2)), 0, False)
             for shard in range(2) for rank in range(2)]
    assert sorted((j for s in finer for j in s), key=str) == sorted(jobs, key=str)


def test_split_by_pixels_puts_the_big_content_alone():
    from stylenorm.inference.batchplan import Job

    jobs = [Job(Path(f"c{i}.png"), Path("s.png"), Path(f"o{i}.jpg")) for i in range(4)]
    pixels = {Path("c0.png"): 300, Path("c1.png"): 100, Path("c2.png"): 100,
              Path("c3.png"): 100}
    assert split_jobs(jobs, 2, pixels) == [[jobs[0]], jobs[1:]]


# --- synchronised batch statistics ----------------------------------------------------------

def _norm_case(seed: int = 0):
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(6, 4, 5, 5, generator=generator) * 3 + 1
    weights = torch.randn(6, 4, 5, 5, generator=generator)
    return x, weights


def _norm_results(layer, x, weights):
    x = x.clone().requires_grad_(True)
    y = layer(x)
    (y * weights).sum().backward()
    grads = {n: p.grad.clone() for n, p in layer.named_parameters()}
    return y.detach(), x.grad, grads, {n: b.clone() for n, b in layer.named_buffers()}


def _sync_norm_worker(rank, world, port, out):
    join_group(rank, world, port)
    x, weights = _norm_case()
    part = slice(rank * 3, rank * 3 + 3)
    results = {}
    for layer in (BatchNorm2d(4), SwitchableNorm2d(4)):
        torch.manual_seed(1)
        layer.weight.data.uniform_(0.5, 1.5)
        assert sync_batch_statistics(layer) == 1
        y, grad_x, grads, buffers = _norm_results(layer, x[part], weights[part])
        for grad in grads.values():
            dist.all_reduce(grad)  # a sum of the ranks' losses: the whole batch's loss
        results[type(layer).__name__] = (y, grad_x, grads, buffers)
    torch.save(results, out / f"rank{rank}.pt")
    dist.destroy_process_group()


def test_batch_and_switchable_norms_take_statistics_over_every_rank(tmp_path):
    spawn(_sync_norm_worker, tmp_path)
    x, weights = _norm_case()
    for layer in (BatchNorm2d(4), SwitchableNorm2d(4)):
        torch.manual_seed(1)
        layer.weight.data.uniform_(0.5, 1.5)
        y, grad_x, grads, buffers = _norm_results(layer, x, weights)
        ranks = [torch.load(tmp_path / f"rank{r}.pt")[type(layer).__name__] for r in range(2)]
        torch.testing.assert_close(torch.cat([r[0] for r in ranks]), y, atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(torch.cat([r[1] for r in ranks]), grad_x, atol=1e-5,
                                   rtol=1e-4)
        for rank in ranks:
            for name in grads:
                torch.testing.assert_close(rank[2][name], grads[name], atol=1e-4, rtol=1e-4)
            for name in buffers:  # running averages from the global statistics
                torch.testing.assert_close(rank[3][name], buffers[name], atol=1e-5, rtol=1e-5)


# --- training: two ranks at batch b against one process at 2b -------------------------------

def _sgd_steps(config: AdaINTrainConfig, steps: int, world: int, nudge: float = 0.0
               ) -> dict[str, torch.Tensor]:
    """``steps`` SGD steps of the AdaIN task through the library's data, DDP and step code,
    from the seeded initial weights times ``1 + nudge``."""
    device, contents, styles = find_inputs(config)
    encoder, _ = load_frozen_encoder(config.encoder)
    torch.manual_seed(config.seed)
    task = build_adain_task(config, encoder, device, contents, styles)
    with torch.no_grad():
        for param in task.network.parameters():
            param.mul_(1 + nudge)
    task.prepare(device, torch.float32, config.channels_last)
    stepper = DataParallelTask(task, device) if world > 1 else task
    optimizer = torch.optim.SGD(task.network.parameters(), lr=config.lr)
    scaler = torch.amp.GradScaler("cpu", enabled=False)
    data = crop_data(config, device, [contents, styles])
    task.network.train()
    for iteration, batch in enumerate(data.batches(0, steps)):
        train_step(stepper, batch, optimizer, scaler, (device, torch.float32), config.lr,
                   iteration)
    return {k: v.detach().clone() for k, v in task.network.state_dict().items()}


def tiny_config(folders, norm: str, batch_size: int) -> AdaINTrainConfig:
    content, style = folders
    return AdaINTrainConfig(content=str(content), style=str(style), norm=norm, device="cpu",
                            batch_size=batch_size, crop_size=32, num_workers=0,
                            lr=2e-3 if norm == "none" else 1e-4,  # SGD on a BN decoder: lower
                            precision="fp32", channels_last=False)


def _sgd_worker(rank, world, port, home, folders, norm, out):
    os.environ["STYLENORM_HOME"] = str(home)
    join_group(rank, world, port)
    weights = _sgd_steps(tiny_config(folders, norm, 2), 3, world)
    if rank == 0:
        torch.save(weights, out)
    dist.destroy_process_group()


@pytest.mark.parametrize("norm", [pytest.param("none", marks=pytest.mark.slow), "batch"])
def test_two_ranks_at_batch_b_train_as_one_process_at_2b(random_store, tmp_path, norm):
    folders = make_pairs(tmp_path / "data", contents=4, styles=3)
    spawn(_sgd_worker, random_store, folders, norm, tmp_path / "two.pt")
    two = torch.load(tmp_path / "two.pt")
    whole = tiny_config(folders, norm, 4)
    start = _sgd_steps(whole, 0, world=1)
    one = _sgd_steps(whole, 3, world=1)
    # The float32 noise floor of these three steps: the same run from weights changed by one
    # part in 10^7 (sums taken in another order, as the ranks' are, perturb it that much).
    nudged = _sgd_steps(whole, 3, world=1, nudge=1e-7)
    for key in one:
        moved = (one[key].float() - start[key].float()).abs().max().item()
        noise = (nudged[key].float() - one[key].float()).abs().max().item()
        gap = (two[key].float() - one[key].float()).abs().max().item()
        # a wrong split or an unsynchronised norm makes the gap of the order of ``moved``
        assert gap <= 4 * noise + 2e-3 * moved + 1e-7, (
            f"{key}: the runs differ by {gap:.3g}; noise {noise:.3g}, moved {moved:.3g}")
    assert max((one[k].float() - start[k].float()).abs().max().item() for k in one) > 1e-3


def test_a_resume_with_another_world_size_keeps_the_global_batch_or_is_refused():
    from stylenorm.training.distributed import check_world, world_record

    saved = world_record(Place(0, 2), 4)  # 2 ranks x 4
    check_world(saved, Place(0, 1), 8, True, "ckpt")  # 1 x 8: the same global batch
    check_world(saved, Place(0, 4), 2, True, "ckpt")
    with pytest.raises(StylenormError, match="global batch of 8.*--batch-size 8"):
        check_world(saved, Place(0, 1), 4, True, "ckpt")
    with pytest.raises(StylenormError, match="process count that divides 8"):
        check_world(saved, Place(0, 3), 4, True, "ckpt")
    with pytest.raises(StylenormError, match="resume it with 2 process"):
        check_world(saved, Place(0, 1), 8, False, "ckpt")  # a task that depends on the split
    check_world(None, Place(0, 1), 8, False, "ckpt")  # a checkpoint from before torchrun


# --- the command line under torchrun --------------------------------------------------------

def train_command(folders, out: Path, *extra: str) -> list[str]:
    content, style = folders
    return ["train", "adain", "--content", str(content), "--style", str(style), "--out", str(out),
            "--crop-size", "32", "--log-every", "1", "--workers", "0", "--precision", "fp32",
            "--device", "cpu", "--norm", "batch", "--threads", "1", "--no-progress", *extra]


def first_loss(run_dir: Path) -> float:
    return json.loads((run_dir / "log.jsonl").read_text().splitlines()[0])["total"]


@pytest.mark.slow
def test_torchrun_training_writes_once_and_resumes_at_the_same_global_batch(random_store,
                                                                             tmp_path):
    folders = make_pairs(tmp_path / "data", contents=4, styles=3)
    out, short = tmp_path / "run", ("--iterations", "2", "--checkpoint-every", "2",
                                    "--sample-every", "2")
    two = run(torchrun(*train_command(folders, out, "--batch-size", "2", *short)), random_store)
    assert two.returncode == 0, two.stderr[-2000:]
    assert two.stdout.count("wrote ") == 1  # rank 0 alone reports
    provenance = read_meta(out / "model.safetensors").provenance
    assert (provenance["world_size"], provenance["global_batch"]) == (2, 4)
    assert provenance["batch_size_per_rank"] == 2
    assert len((out / "log.jsonl").read_text().splitlines()) == 2
    assert sorted(p.name for p in (out / "samples").iterdir()) == ["iter_0000002.jpg"]
    one = run(stylenorm(*train_command(folders, tmp_path / "one", "--batch-size", "4", *short)),
              random_store)
    assert one.returncode == 0, one.stderr[-2000:]
    assert first_loss(out) == pytest.approx(first_loss(tmp_path / "one"), rel=1e-5)

    more = ("--resume", "--iterations", "3", "--checkpoint-every", "2", "--sample-every", "0")
    refused = run(stylenorm(*train_command(folders, out, "--batch-size", "2", *more)),
                  random_store)
    assert refused.returncode == 1 and "Traceback" not in refused.stderr
    assert "global batch of 4" in refused.stderr and "--batch-size 4" in refused.stderr
    resumed = run(stylenorm(*train_command(folders, out, "--batch-size", "4", *more)),
                  random_store)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert read_meta(out / "model.safetensors").provenance["world_size"] == 1
    assert len((out / "log.jsonl").read_text().splitlines()) == 3


def children(pid: int) -> list[int]:
    text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    return [int(value) for value in text.split()]


def wait_for(condition, what: str, limit: float = TIMEOUT) -> None:
    deadline = time.monotonic() + limit
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.05)


def start(command: list[str], home: Path) -> subprocess.Popen:
    return subprocess.Popen(command, env=environment(home), cwd=REPO, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


@pytest.mark.slow
def test_sigterm_stops_every_rank_with_one_checkpoint_and_resume_finishes(random_store,
                                                                          tmp_path):
    folders = make_pairs(tmp_path / "data", contents=4, styles=3)
    out = tmp_path / "run"
    endless = ("--batch-size", "2", "--checkpoint-every", "1000", "--sample-every", "0")
    job = start(torchrun(*train_command(folders, out, "--iterations", "100000", *endless)),
                random_store)
    log = out / "log.jsonl"
    wait_for(lambda: log.exists() and len(log.read_text().splitlines()) >= 2, "two iterations")
    job.send_signal(signal.SIGTERM)
    _, stderr = job.communicate(timeout=TIMEOUT)
    assert job.returncode != 0
    assert stderr.count("error: stopped at iteration") == 2  # each rank, at the same iteration
    assert "/stylenorm/" not in stderr  # no rank's traceback (torchrun prints its own)
    stopped = torch.load(out / "checkpoint.pt", weights_only=True)["iteration"]
    assert stopped == len(log.read_text().splitlines()) and stopped >= 2
    assert not list(out.glob(".*.part"))
    resumed = run(torchrun(*train_command(folders, out, "--iterations", str(stopped + 1),
                                          "--resume", *endless)), random_store)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert torch.load(out / "checkpoint.pt", weights_only=True)["iteration"] == stopped + 1


# --- batch: a killed rank or shard, and the re-run ------------------------------------------

def batch_command(folders, out: Path, *extra: str, size: int = 64) -> list[str]:
    content, style = folders
    return ["batch", str(content), str(style), "-o", str(out), "--size", str(size),
            "--style-size", "64", "--device", "cpu", "--precision", "fp32", "--threads", "1",
            "--no-progress", *extra]


def complete_outputs(out: Path) -> list[Path]:
    """The outputs present, each checked to decode completely."""
    found = sorted(out.glob("*.jpg"))
    for path in found:
        with Image.open(path) as image:
            image.load()
    return found


def kill_after_first_output(job: subprocess.Popen, out: Path, victim) -> None:
    wait_for(lambda: out.is_dir() and any(out.glob("*.jpg")), "the first output")
    os.kill(victim(), signal.SIGKILL)
    job.communicate(timeout=TIMEOUT)


@pytest.mark.parametrize("how", ["rank", pytest.param("shard", marks=pytest.mark.slow)])
def test_a_killed_rank_or_shard_leaves_complete_files_and_a_rerun_makes_the_rest(
        random_store, tmp_path, how):
    # Outputs large enough that on a quiet machine the job is still running when the first
    # output appears and the kill arrives (the one process of --shard holds a whole shard).
    contents, size = (8, 128) if how == "rank" else (16, 256)
    folders = make_pairs(tmp_path / "data", contents=contents, styles=3, size=64)
    out = tmp_path / "out"
    if how == "rank":
        command = torchrun(*batch_command(folders, out, size=size))
        job = start(command, random_store)
        kill_after_first_output(job, out, lambda: children(job.pid)[-1])
    else:
        command = stylenorm(*batch_command(folders, out, "--shard", "0/2", size=size))
        job = start(command, random_store)
        kill_after_first_output(job, out, lambda: job.pid)
    assert job.returncode != 0
    made = complete_outputs(out)
    expected = 3 * contents if how == "rank" else 3 * contents // 2
    assert 0 < len(made) < expected  # killed mid-run
    again = run(command, random_store)
    assert again.returncode == 0, again.stderr[-2000:]
    assert f"skipped {len(made)} (already there)" in again.stdout + again.stderr
    if how == "shard":
        rest = run(stylenorm(*batch_command(folders, out, "--shard", "1/2", size=size)),
                   random_store)
        assert rest.returncode == 0 and f"done {expected}" in rest.stdout + rest.stderr
    assert len(complete_outputs(out)) == 3 * contents and not list(out.glob(".*.part"))


@pytest.mark.parametrize("shard", ["3/2", "x", "1/0", "-1/2"])
def test_a_bad_shard_is_one_line_naming_the_option(tmp_path, shard):
    from typer.testing import CliRunner

    from stylenorm.cli.app import app

    content, style = make_pairs(tmp_path, contents=1, styles=1)
    result = CliRunner().invoke(app, ["batch", str(content), str(style), "-o",
                                      str(tmp_path / "out"), "--shard", shard])
    assert result.exit_code == 2 and "Traceback" not in result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: --shard"), result.output
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
def test_torchrun_batch_prints_one_summary_and_fails_if_any_rank_failed(random_store, tmp_path):
    folders = make_pairs(tmp_path / "data", contents=3, styles=2)
    (folders[0] / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not an image")
    done = run(torchrun(*batch_command(folders, tmp_path / "out")), random_store)
    said = done.stdout + done.stderr
    assert done.returncode != 0 and "/stylenorm/" not in said
    assert said.count("done 6, skipped 0 (already there), failed 2 (not made)") == 1
    assert len(complete_outputs(tmp_path / "out")) == 6
