"""AdaIN training: tiny runs for every norm, save, exact resume, stylize, data, errors, CLI."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
import torch
from conftest import make_image
from PIL import Image
from typer.testing import CliRunner

from stylenorm.cli.app import app
from stylenorm.errors import StylenormError
from stylenorm.hub.files import read_meta
from stylenorm.inference.stylize import StylizeOptions, Stylizer
from stylenorm.nn.norms import NormName
from stylenorm.training.adain import AdaINTrainConfig, train_adain
from stylenorm.training.config import TrainConfig, learning_rate
from stylenorm.training.crops import CropConfig
from stylenorm.training.data import CropData
from stylenorm.training.inputs import find_images

pytestmark = pytest.mark.usefixtures("one_thread")


def make_folders(root, contents=4, styles=3):
    for i in range(contents):
        make_image(root / "content" / ("sub" if i % 2 else "") / f"c{i}.png",
                   (40 + 8 * i, 36), seed=i)
    for i in range(styles):
        make_image(root / "style" / f"s{i}.jpg", (36, 44), seed=100 + i)
    return root / "content", root / "style"


@pytest.fixture
def folders(tmp_path):
    return make_folders(tmp_path)


def tiny(tmp_path, folders, **overrides) -> AdaINTrainConfig:
    content, style = folders
    values = dict(content=str(content), style=str(style), out=str(tmp_path / "run"),
                  iterations=2, batch_size=2, crop_size=32, checkpoint_every=2, sample_every=2,
                  log_every=1, num_workers=0, sample_count=2)
    values.update(overrides)
    return AdaINTrainConfig(**values)


def losses(run_dir) -> list[float]:
    lines = (run_dir / "log.jsonl").read_text().splitlines()
    return [json.loads(line)["total"] for line in lines]


@pytest.mark.parametrize("norm", [n.value for n in NormName])
@pytest.mark.slow
def test_every_norm_trains_saves_and_stylizes(random_store, tmp_path, folders, norm):
    result = train_adain(tiny(tmp_path, folders, norm=norm), progress=False)
    run = tmp_path / "run"
    meta = read_meta(result.model_path)
    assert meta.kind == "adain" and meta.config["decoder"] == {"norm": norm, "affine": True}
    assert meta.config["encoder"] == {"family": "normalised"}
    prov = meta.provenance
    assert prov["iterations"] == 2 and prov["training_config"]["norm"] == norm
    assert set(prov["final_losses"]) == {"total", "content", "style"} and prov["processor"]
    assert len(losses(run)) == 2 and all(v == v for v in losses(run))
    for name in ("checkpoint.pt", "config.json", "loss_curve.png", "samples/iter_0000002.jpg"):
        assert (run / name).is_file(), name
    stylizer = Stylizer(result.model_path, device="cpu")
    content = torch.rand(1, 3, 24, 32)
    out = stylizer.stylize_tensors(content, [torch.rand(1, 3, 24, 24)], StylizeOptions())
    assert out.shape == (1, 3, 24, 32) and torch.isfinite(out).all()
    if norm == "switchable":
        weights = prov["switchable_weights"]
        assert len(weights) == 8 and set(weights["conv4_1"]) == {"mean", "var"}
        assert sum(weights["conv4_1"]["var"].values()) == pytest.approx(1.0)
        assert "conv1_2" in result.report and (run / "switchable_weights.png").is_file()


def test_resume_continues_exactly(random_store, tmp_path, folders):
    whole = train_adain(tiny(tmp_path, folders, out=str(tmp_path / "a"), iterations=4,
                             checkpoint_every=2, sample_every=0), progress=False)
    train_adain(tiny(tmp_path, folders, out=str(tmp_path / "b"), iterations=2,
                     checkpoint_every=2, sample_every=0), progress=False)
    resumed = train_adain(tiny(tmp_path, folders, out=str(tmp_path / "b"), iterations=4,
                               checkpoint_every=2, sample_every=0), resume=True, progress=False)
    assert losses(tmp_path / "b") == losses(tmp_path / "a")
    assert resumed.final_losses == whole.final_losses


def test_stream_workers_and_memory_give_the_same_batches(tmp_path, folders):
    paths = [find_images(folders[0], "content"), find_images(folders[1], "style")]
    crop, cpu = CropConfig(24), torch.device("cpu")
    runs = [list(CropData(paths, crop, 3, 7, cpu, mode, workers).batches(2, 5))
            for mode, workers in (("stream", 0), ("stream", 2), ("memory", 0))]
    for other in runs[1:]:
        for a, b in zip(runs[0], other, strict=True):
            assert all(torch.equal(x, y) for x, y in zip(a, b, strict=True))
    later = list(CropData(paths, crop, 3, 7, cpu).batches(3, 5))  # a resumed sampler
    assert all(torch.equal(x, y) for x, y in zip(later[0], runs[0][1], strict=True))
    assert runs[0][0][0].shape == (3, 3, 24, 24)


def test_unreadable_images_are_reported_once_and_skipped(random_store, tmp_path, folders,
                                                          caplog):
    (folders[0] / "broken.jpg").write_bytes(b"not a jpeg")
    with caplog.at_level(logging.WARNING, logger="stylenorm"):
        train_adain(tiny(tmp_path, folders, iterations=4, batch_size=3, sample_every=0),
                    progress=False)
    hits = [r for r in caplog.records if "broken.jpg" in r.getMessage()]
    assert len(hits) == 1 and "skipping unreadable image" in hits[0].getMessage()


def test_learning_rate_schedules():
    config = TrainConfig(lr=1e-4, lr_decay=5e-5)
    assert learning_rate(config, 0) == 1e-4
    assert learning_rate(config, 20_000) == pytest.approx(1e-4 / 2)
    assert learning_rate(TrainConfig(schedule="constant"), 10**6) == TrainConfig().lr


@pytest.mark.parametrize("change, message", [
    ({"content": "EMPTY"}, "no images found"),
    ({"out": "FILE/run"}, "cannot write there"),
    ({"norm": "batch", "batch_size": 1}, "batch_size >= 2"),
    ({"iterations": 0}, "iterations must be >= 1"),
    ({"encoder": "no-such-encoder"}, "weights import --encoder"),
])
def test_clear_errors(random_store, tmp_path, folders, change, message):
    (tmp_path / "EMPTY").mkdir()
    (tmp_path / "FILE").write_text("a file, not a folder")
    change = {k: str(tmp_path / v) if v in ("EMPTY", "FILE/run") else v
              for k, v in change.items()}
    with pytest.raises(StylenormError, match=message):
        train_adain(tiny(tmp_path, folders, **change), progress=False)


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_gpu_requested_without_one(random_store, tmp_path, folders):
    with pytest.raises(StylenormError, match="no CUDA GPU"):
        train_adain(tiny(tmp_path, folders, device="cuda"), progress=False)


def test_run_folder_is_protected_and_resume_checks_settings(random_store, tmp_path, folders):
    train_adain(tiny(tmp_path, folders, iterations=1, sample_every=0), progress=False)
    with pytest.raises(StylenormError, match="already holds a run"):
        train_adain(tiny(tmp_path, folders, iterations=1), progress=False)
    with pytest.raises(StylenormError, match="batch_size: 2 -> 3"):
        train_adain(tiny(tmp_path, folders, batch_size=3), resume=True, progress=False)
    with pytest.raises(StylenormError, match="no checkpoint.pt to resume"):
        train_adain(tiny(tmp_path, folders, out=str(tmp_path / "new")), resume=True,
                    progress=False)


@pytest.mark.slow
def test_cli_train_adain_then_stylize(random_store, tmp_path, folders):
    runner = CliRunner()
    out = tmp_path / "cli-run"
    args = ["train", "adain", "--content", folders[0], "--style", folders[1], "--out", out,
            "--iterations", 2, "--batch-size", 2, "--crop-size", 32, "--sample-every", 0,
            "--workers", 0, "--no-progress", "--norm", "instance", "--style-loss", "gram"]
    result = runner.invoke(app, [str(a) for a in args])
    assert result.exit_code == 0, result.output
    assert "wrote" in result.output and "final losses" in result.output
    image = tmp_path / "stylised.png"
    result = runner.invoke(app, ["stylize", str(folders[0] / "c0.png"),
                                 str(folders[1] / "s0.jpg"), "--model",
                                 str(out / "model.safetensors"), "-o", str(image), "--size", "0"])
    assert result.exit_code == 0, result.output
    assert Image.open(image).size == (40, 36)
    result = runner.invoke(app, [str(a) for a in args])  # again, without --resume
    assert result.exit_code == 1 and "already holds a run" in result.output


def test_cli_shared_options_reach_every_trainer(random_store, tmp_path, folders):
    runner = CliRunner()
    out = tmp_path / "lite-run"
    args = ["train", "lite", "--content", folders[0], "--style", folders[1], "--out", out,
            "--iterations", 2, "--batch-size", 2, "--crop-size", 32, "--sample-every", 0,
            "--workers", 0, "--no-progress", "--val-content", folders[0], "--val-style",
            folders[1], "--val-every", 1, "--val-count", 2, "--schedule", "constant",
            "--precision", "fp32", "--seed", 3, "--threads", 1]
    result = runner.invoke(app, [str(a) for a in args])
    assert result.exit_code == 0, result.output
    saved = json.loads((out / "config.json").read_text())
    assert (saved["schedule"], saved["precision"], saved["seed"], saved["val_count"]) == (
        "constant", "fp32", 3, 2)
    assert len(val_records(out)) == 3
    result = runner.invoke(app, ["train", "cin", "--content", str(folders[0]), "--styles",
                                 str(folders[1]), "--out", str(tmp_path / "cin"),
                                 "--val-every", "1"])
    assert result.exit_code == 1 and "for adain and lite" in result.output


@pytest.mark.slow
def test_killed_run_resumes_exactly(random_store, tmp_path, folders):
    """SIGKILL a `python -m stylenorm train adain` after its first checkpoint, resume it, and get
    the loss sequence of an uninterrupted run, with no temporary files left behind."""
    import os
    import signal
    import subprocess
    import sys
    import time

    config = tiny(tmp_path, folders, out=str(tmp_path / "killed"))
    args = [sys.executable, "-m", "stylenorm", "train", "adain", "--content", config.content,
            "--style", config.style, "--out", config.out, "--iterations", "10",
            "--batch-size", "2", "--crop-size", "32", "--checkpoint-every", "4",
            "--sample-every", "0", "--log-every", "1", "--workers", "0", "--no-progress",
            "--threads", "1"]  # one thread: quick on a busy machine, and the same as below
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    checkpoint = tmp_path / "killed" / "checkpoint.pt"
    deadline = time.monotonic() + 60
    while not checkpoint.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, proc.stdout.read().decode()
    assert not (tmp_path / "killed" / "model.safetensors").exists()
    resumed = subprocess.run([*args, "--resume"], capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    whole = tiny(tmp_path, folders, iterations=10, checkpoint_every=10, sample_every=0,
                 out=str(tmp_path / "whole"))
    train_adain(whole, progress=False)  # one thread (the fixture), as the subprocesses
    assert losses(tmp_path / "killed") == losses(tmp_path / "whole")
    leftovers = [p.name for p in (tmp_path / "killed").rglob("*") if p.name.endswith(".part")]
    assert not leftovers


@pytest.mark.slow
@pytest.mark.parametrize("whom", ["group", "every process"])
def test_sigterm_to_the_process_group_stops_with_a_checkpoint(random_store, tmp_path, folders,
                                                              whom):
    """SIGTERM to the whole process group of a run with DataLoader workers (what `kill --
    -PGID` sends), or to each of its processes (`pkill -f`, a service manager's cgroup) stops it
    after the current iteration with a checkpoint; the workers do not die first and take the run
    down without one."""
    import os
    import signal
    import subprocess
    import sys
    import time

    config = tiny(tmp_path, folders, out=str(tmp_path / "stopped"))
    args = [sys.executable, "-m", "stylenorm", "train", "adain", "--content", config.content,
            "--style", config.style, "--out", config.out, "--iterations", "100000",
            "--batch-size", "2", "--crop-size", "32", "--checkpoint-every", "1000",
            "--sample-every", "0", "--log-every", "1", "--workers", "2", "--no-progress",
            "--threads", "1"]
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            start_new_session=True)
    log_file = tmp_path / "stopped" / "log.jsonl"
    deadline = time.monotonic() + 60
    while proc.poll() is None and time.monotonic() < deadline and (
            not log_file.exists() or len(log_file.read_text().splitlines()) < 3):
        time.sleep(0.05)
    if whom == "group":
        os.killpg(proc.pid, signal.SIGTERM)
    else:
        children = Path(f"/proc/{proc.pid}/task/{proc.pid}/children").read_text().split()
        assert len(children) >= 2, children  # the workers
        for pid in [*map(int, children), proc.pid]:
            os.kill(pid, signal.SIGTERM)
    output = proc.communicate(timeout=60)[0].decode()
    assert proc.returncode == 143 and "stopped at iteration " in output, output
    done = int(output.split("stopped at iteration ")[1].split(";")[0])
    state = torch.load(tmp_path / "stopped" / "checkpoint.pt", weights_only=True)
    assert state["iteration"] == done >= 3
    assert json.loads(log_file.read_text().splitlines()[-1])["iter"] == done


def val_records(run_dir) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "val.jsonl").read_text().splitlines()]


@pytest.mark.slow
def test_validation_losses_are_logged_and_survive_resume(random_store, tmp_path, folders):
    content, style = folders
    held_out = make_folders(tmp_path / "held", contents=2, styles=2)
    settings = dict(val_content=str(held_out[0]), val_style=str(held_out[1]), val_every=2,
                    val_count=2, sample_every=0)
    whole = tmp_path / "whole"
    train_adain(tiny(tmp_path, folders, out=str(whole), iterations=4, **settings),
                progress=False)
    records = val_records(whole)
    assert [r["iter"] for r in records] == [0, 2, 4]
    assert all(set(r) == {"iter", "total", "content", "style"} for r in records)
    assert (whole / "val_curve.png").is_file()
    # the decoder changes between validations, and validation does not change the training
    assert records[0]["total"] != records[2]["total"]
    plain = tmp_path / "plain"
    train_adain(tiny(tmp_path, folders, out=str(plain), iterations=4, sample_every=0),
                progress=False)
    assert losses(plain) == losses(whole) and not (plain / "val.jsonl").exists()
    # stop at 2, resume to 4: the same validation records
    split = tmp_path / "split"
    train_adain(tiny(tmp_path, folders, out=str(split), iterations=2, **settings),
                progress=False)
    train_adain(tiny(tmp_path, folders, out=str(split), iterations=4, **settings),
                resume=True, progress=False)
    assert [r["iter"] for r in val_records(split)] == [0, 2, 4]
    assert val_records(split)[2]["total"] == pytest.approx(records[2]["total"], rel=1e-5)


def test_validation_needs_both_folders(random_store, tmp_path, folders):
    with pytest.raises(StylenormError, match="^val_content and val_style go together"):
        train_adain(tiny(tmp_path, folders, val_content=str(folders[0]), val_every=1),
                    progress=False)


def test_init_starts_from_a_trained_decoder(random_store, tmp_path, folders):
    first = train_adain(tiny(tmp_path, folders, out=str(tmp_path / "first"), sample_every=0),
                        progress=False)
    from stylenorm.hub.files import load_weights

    trained, _ = load_weights(first.model_path)
    second = train_adain(tiny(tmp_path, folders, out=str(tmp_path / "second"), sample_every=0,
                              iterations=1, lr=1e-12), progress=False, init=str(first.model_path))
    continued, meta = load_weights(second.model_path)
    assert meta.provenance["init"] == first.model_path.name
    assert all(torch.allclose(continued[k], trained[k], atol=1e-6) for k in trained)
    with pytest.raises(StylenormError, match="norm none in the file, batch asked for$"):
        train_adain(tiny(tmp_path, folders, out=str(tmp_path / "third"), norm="batch"),
                    progress=False, init=str(first.model_path))


def test_switchable_mixture_learns_at_its_own_rate(random_store, tmp_path, folders):
    from stylenorm.training.adain import build_adain_task

    config = tiny(tmp_path, folders, norm="switchable", mix_lr_scale=10.0)
    encoder = torch.nn.Identity()
    task = build_adain_task(config, encoder, torch.device("cpu"), find_images(folders[0], "c"),
                            find_images(folders[1], "s"))
    rest, mixture = task.trainable()
    assert mixture["lr_scale"] == 10.0 and len(mixture["params"]) == 16
    optimizer = torch.optim.Adam(task.trainable(), lr=1.0)
    assert learning_rate(config, 0) == config.lr
    from stylenorm.training.loop import train_step

    class Fixed:
        network = task.network

        def losses(self, batch, iteration):
            return {"total": sum(p.sum() for p in task.network.parameters())}

    train_step(Fixed(), [], optimizer, torch.amp.GradScaler("cpu", enabled=False),
               (torch.device("cpu"), torch.float32), 1e-3)
    assert [g["lr"] for g in optimizer.param_groups] == [1e-3, pytest.approx(1e-2)]


def test_sigint_stops_after_the_iteration_with_a_checkpoint(random_store, tmp_path, folders,
                                                            monkeypatch):
    import os
    import signal

    from stylenorm.training import loop as train

    whole = train_adain(tiny(tmp_path, folders, out=str(tmp_path / "a"), iterations=4,
                             checkpoint_every=4, sample_every=0), progress=False)
    real_step = train.train_step

    def step(task, batch, optimizer, scaler, precision, lr, iteration=0):
        losses = real_step(task, batch, optimizer, scaler, precision, lr, iteration)
        if iteration == 2:  # the 3rd iteration: Ctrl-C arrives while it runs
            os.kill(os.getpid(), signal.SIGINT)
        return losses

    monkeypatch.setattr(train, "train_step", step)
    config = tiny(tmp_path, folders, out=str(tmp_path / "b"), iterations=4, checkpoint_every=4,
                  sample_every=0)
    before = signal.getsignal(signal.SIGINT)  # SIG_IGN in a shell's background job
    with pytest.raises(StylenormError, match="stopped at iteration 3.*--resume"):
        train_adain(config, progress=False)
    assert signal.getsignal(signal.SIGINT) is before  # handler restored
    assert torch.load(tmp_path / "b" / "checkpoint.pt", weights_only=True)["iteration"] == 3
    monkeypatch.setattr(train, "train_step", real_step)
    resumed = train_adain(config, resume=True, progress=False)
    assert losses(tmp_path / "b") == losses(tmp_path / "a")
    assert resumed.final_losses == whole.final_losses


def test_time_limit_finishes_early_with_a_checkpoint_and_a_model(random_store, tmp_path,
                                                                  folders, monkeypatch):
    from stylenorm.training import loop as train

    clock = iter(range(0, 10_000, 25))  # every reading 25 s later than the one before
    config = tiny(tmp_path, folders, out=str(tmp_path / "t"), iterations=50, checkpoint_every=50,
                  sample_every=0, time_limit=1.0)  # one minute of training
    # Only the fake clock is undone after this block: random_store's STYLENORM_HOME must stay set
    # for the resumed run (a plain monkeypatch.undo() also dropped it, and the run then read the
    # encoder from ~/.cache/stylenorm, or failed where that was empty).
    with monkeypatch.context() as patch:
        patch.setattr(train.time, "perf_counter", lambda: next(clock))
        result = train_adain(config, progress=False)
    assert 1 < result.iterations < 50
    state = torch.load(tmp_path / "t" / "checkpoint.pt", weights_only=True)
    assert state["iteration"] == result.iterations
    meta = read_meta(result.model_path)
    assert meta.provenance["iterations"] == result.iterations
    resumed = train_adain(AdaINTrainConfig(**{**config.to_dict(), "iterations": 50,
                                              "time_limit": 0.0}), resume=True, progress=False)
    assert resumed.iterations == 50


def test_config_enum_fields_are_enums_and_save_as_plain_values():
    from stylenorm.runtime import Precision
    from stylenorm.training.config import Schedule
    from stylenorm.training.data import DataMode
    from stylenorm.training.objective import StyleLoss

    config = AdaINTrainConfig(norm="instance", style_loss="gram", schedule="constant")
    assert config.norm is NormName.INSTANCE and config.style_loss is StyleLoss.GRAM
    assert config.schedule is Schedule.CONSTANT and config.precision is Precision.AUTO
    assert config.data_mode is DataMode.AUTO
    saved = config.to_dict()
    assert saved["norm"] == "instance" and type(saved["norm"]) is str
    assert AdaINTrainConfig.from_dict(json.loads(json.dumps(saved))) == config
    with pytest.raises(StylenormError, match="^style_loss must be one of"):
        AdaINTrainConfig(style_loss="wrong").validate()


def test_weight_average_is_exported_and_resumes_exactly(random_store, tmp_path, folders):
    from safetensors.torch import load_file

    def run(out, iterations, resume=False):
        config = tiny(tmp_path, folders, out=str(tmp_path / out), iterations=iterations,
                      checkpoint_every=2, sample_every=0, ema=0.9)
        return train_adain(config, resume=resume, progress=False)

    whole = run("a", 4)
    run("b", 2)
    resumed = run("b", 4, resume=True)
    exported, again = load_file(whole.model_path), load_file(resumed.model_path)
    assert all(torch.equal(exported[k], again[k]) for k in exported)
    state = torch.load(tmp_path / "a" / "checkpoint.pt", weights_only=False)
    average, raw = state["ema"], state["network"]
    assert average["steps"] == 4
    key = next(k for k in exported if k in average["shadow"])
    assert torch.allclose(exported[key].float(), average["shadow"][key])
    assert not torch.allclose(average["shadow"][key], raw[key].float())  # not the last weights
