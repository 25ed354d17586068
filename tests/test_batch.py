"""``stylenorm batch``: planning, names, skipping, failures, N + M encoder passes, parity with
``stylize``, and an interrupted run that a rerun finishes."""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import make_image
from PIL import Image
from typer.testing import CliRunner

from stylenorm.cli.app import app
from stylenorm.errors import StylenormError
from stylenorm.inference.batch import BatchOptions, run_batch
from stylenorm.inference.batchplan import plan_folders, plan_pairs, read_pairs, split_existing
from stylenorm.inference.stylize import StylizeOptions, Stylizer

pytestmark = pytest.mark.usefixtures("one_thread")

runner = CliRunner()
REPO = Path(__file__).resolve().parent.parent


def run(*args):
    return runner.invoke(app, ["batch", *(str(a) for a in args), "--no-progress",
                               "--style-size", "0"])


@pytest.fixture
def folders(tmp_path):
    """Three contents (two of one size) and two styles."""
    contents, styles = tmp_path / "contents", tmp_path / "styles"
    make_image(contents / "a.png", (40, 32), seed=1)
    make_image(contents / "b.jpg", (40, 32), seed=2)
    make_image(contents / "c.png", (36, 44), seed=3)
    make_image(styles / "x.png", (32, 32), seed=4)
    make_image(styles / "y.jpg", (36, 32), seed=5)
    return contents, styles


def names(folder: Path) -> set[str]:
    return {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()}


def test_every_combination_written_then_skipped_then_overwritten(random_store, folders, tmp_path):
    out = tmp_path / "out"
    first = run(*folders, "-o", out, "--size", 0)
    assert first.exit_code == 0, first.output
    assert names(out) == {f"{c}__{s}.jpg" for c in "abc" for s in "xy"}
    assert "done 6, skipped 0" in first.output
    again = run(*folders, "-o", out, "--size", 0)
    assert again.exit_code == 0 and "done 0, skipped 6" in again.output
    redo = run(*folders, "-o", out, "--size", 0, "--overwrite", "--ext", "png")
    assert redo.exit_code == 0 and "done 6, skipped 0" in redo.output
    assert len(names(out)) == 12


def test_bad_files_are_reported_and_the_rest_is_made(random_store, folders, tmp_path):
    contents, styles = folders
    (contents / "broken.jpg").write_bytes(b"not an image")
    make_image(styles / "tiny.png", (4, 4))
    result = run(contents, styles, "-o", tmp_path / "out", "--size", 0)
    assert result.exit_code == 1
    assert "broken.jpg: not a readable image" in result.output
    assert "tiny.png: image is 4x4" in result.output, result.output
    assert "done 6, skipped 0 (already there), failed 6" in result.output
    assert len(names(tmp_path / "out")) == 6


def test_pairs_file(random_store, folders, tmp_path):
    contents, styles = folders
    pairs = tmp_path / "pairs.txt"
    pairs.write_text(f"# content, style\n{contents}/a.png\t{styles}/y.jpg\n\n"
                     f"contents/c.png,styles/x.png\n")
    result = runner.invoke(app, ["batch", "--pairs", str(pairs), "-o", str(tmp_path / "out"),
                                 "--no-progress", "--ext", "png", "--style-size", "0"])
    assert result.exit_code == 0, result.output
    assert names(tmp_path / "out") == {"a__y.png", "c__x.png"}


def test_pairs_file_errors_name_the_line(tmp_path):
    pairs = tmp_path / "pairs.txt"
    pairs.write_text("a.png\tb.png\nonly-one-field\n")
    with pytest.raises(StylenormError, match=r"pairs.txt:2: expected"):
        read_pairs(pairs)


def test_recursive_plan_mirrors_folders_and_skips_the_output_folder(folders):
    contents, styles = folders
    make_image(contents / "sub" / "d.png", (32, 32))
    out = contents / "results"
    make_image(out / "old__x.png", (32, 32))  # an earlier output must not become a content
    flat = plan_folders(contents, styles, out)
    deep = plan_folders(contents, styles, out, ext="png", recursive=True)
    assert len(flat) == 6 and len(deep) == 8
    assert out / "sub" / "d__x.png" in {job.output for job in deep}


def test_colliding_names_are_refused(folders, tmp_path):
    contents, styles = folders
    make_image(styles / "x.jpg", (32, 32))  # x.png and x.jpg -> the same output name
    with pytest.raises(StylenormError, match="would be written here"):
        plan_folders(contents, styles, tmp_path / "out")


def count_encodes(stylizer: Stylizer) -> list[int]:
    calls: list[int] = []
    encode = stylizer.model.encode

    def counting(images):
        calls.append(images.shape[0])
        return encode(images)

    stylizer.model.encode = counting
    return calls


@pytest.mark.parametrize("preserve_color", [False, True])
def test_each_content_and_style_is_encoded_once(random_store, folders, tmp_path, preserve_color):
    contents, styles = folders
    plan = split_existing(plan_folders(contents, styles, tmp_path / "out"))
    stylizer = Stylizer("adain", precision="fp32")
    calls = count_encodes(stylizer)
    options = StylizeOptions(size=0, style_size=0, preserve_color=preserve_color)
    report = run_batch(stylizer, plan, options, BatchOptions(batch_size=2), progress=False)
    assert report.ok and len(report.done) == 6
    # N + M passes; with colours preserved a style's code depends on the content: N + N*M.
    assert sum(calls) == (3 + 6 if preserve_color else 3 + 2)
    assert max(calls) == 2  # the two 40x32 contents went through the encoder together


@pytest.mark.parametrize("batch_size", [1, 2])
@pytest.mark.parametrize("model", ["adain", "lite"])
def test_fp32_batch_equals_stylize(random_store, folders, tmp_path, model, batch_size):
    """One content per call: pixel-identical. Two same-size contents in one call: a
    convolution over two images may round differently (measured: up to 4e-7 in the lite
    model's features), so a pixel may differ by one level of 255."""
    contents, styles = folders
    plan = split_existing(plan_pairs([(contents / "a.png", styles / "y.jpg"),
                                      (contents / "b.jpg", styles / "y.jpg")],
                                     tmp_path / "out", ext="png"))
    stylizer = Stylizer(model, precision="fp32")
    options = StylizeOptions(size=0, style_size=0, alpha=0.8)
    assert run_batch(stylizer, plan, options, BatchOptions(batch_size=batch_size),
                     progress=False).ok
    for content in ("a.png", "b.jpg"):
        single = stylizer.stylize_file(contents / content, [styles / "y.jpg"],
                                       tmp_path / f"single_{content}.png", options)
        batched = tmp_path / "out" / f"{Path(content).stem}__y.png"
        ours, theirs = (np.asarray(Image.open(p), dtype=np.int16) for p in (single, batched))
        if batch_size == 1:
            assert np.array_equal(ours, theirs)
        else:
            assert np.abs(ours - theirs).max() <= 1 and (ours == theirs).mean() > 0.99


@pytest.mark.slow
def test_killed_run_leaves_complete_images_and_a_rerun_finishes(random_store, tmp_path):
    contents, styles, out = tmp_path / "c", tmp_path / "s", tmp_path / "out"
    for i in range(10):
        make_image(contents / f"c{i}.png", (96, 80), seed=i)
    make_image(styles / "s0.png", (64, 64), seed=20)
    make_image(styles / "s1.png", (64, 64), seed=21)
    command = [sys.executable, "-m", "stylenorm", "batch", str(contents), str(styles), "-o",
               str(out), "--size", "0", "--style-size", "0", "--precision", "fp32",
               "--no-progress", "--ext", "png"]
    env = {**os.environ, "STYLENORM_HOME": str(random_store), "OMP_NUM_THREADS": "1"}
    child = subprocess.Popen(command, env=env, cwd=REPO, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE)
    deadline = time.monotonic() + 40
    while time.monotonic() < deadline and child.poll() is None:
        if len(list(out.glob("*.png"))) >= 3:
            break
        time.sleep(0.01)
    child.send_signal(signal.SIGKILL)
    child.wait()
    finished = sorted(out.glob("*.png"))
    assert 0 < len(finished) < 20, "the run should have been killed part-way"
    for path in finished:  # every output under its final name is a whole image
        with Image.open(path) as image:
            image.load()
    before = {p: p.stat().st_mtime_ns for p in finished}
    rerun = runner.invoke(app, command[3:])  # started again (in this process: quicker)
    assert rerun.exit_code == 0, rerun.output
    assert f"done {20 - len(finished)}, skipped {len(finished)}" in rerun.output
    assert len(list(out.glob("*.png"))) == 20
    assert not list(out.glob(".*.part")), "temporary files were left behind"
    assert all(p.stat().st_mtime_ns == t for p, t in before.items())


def dead_pid() -> int:
    """The id of a process that has exited (and been reaped)."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_cleanup_keeps_the_temporary_files_of_a_live_run(random_store, tmp_path):
    """A second run into the same folder removes only the leftovers of dead processes: the file
    that a first run is writing now survives, and so does its output."""
    make_image(tmp_path / "c" / "a.png", (24, 24))
    make_image(tmp_path / "s" / "x.png", (20, 20), seed=3)
    out = tmp_path / "out"
    out.mkdir()
    live = out / f".a__x.png.{os.getppid()}.0123456789ab.part"  # another run, writing now
    dead = out / f".a__x.png.{dead_pid()}.0123456789ab.part"  # a killed run's leftover
    legacy = out / ".a__x.png.0123456789ab.part"  # an older stylenorm's leftover
    other = out / ".a__x.png.keep.png.1.0123456789ab.part"  # another output's name
    for path in [live, dead, legacy, other]:
        path.write_bytes(b"half")
    result = runner.invoke(app, ["batch", str(tmp_path / "c"), str(tmp_path / "s"), "-o",
                                 str(out), "--size", "0", "--style-size", "0", "--device", "cpu",
                                 "--no-progress", "--ext", "png"])
    assert result.exit_code == 0, result.output
    assert live.exists() and other.exists()
    assert not dead.exists() and not legacy.exists()
    assert (out / "a__x.png").is_file()


def test_full_disk_stops_the_run_at_once_and_a_rerun_makes_the_rest(random_store, tmp_path,
                                                                   monkeypatch):
    for i in range(10):
        make_image(tmp_path / "c" / f"c{i}.png", (24, 24), seed=i)
    make_image(tmp_path / "s" / "x.png", (20, 20), seed=9)
    out = tmp_path / "out"
    command = ["batch", str(tmp_path / "c"), str(tmp_path / "s"), "-o", str(out), "--size", "0",
               "--style-size", "0", "--device", "cpu", "--no-progress", "--ext", "png",
               "--workers", "1"]
    real_save, saves = Image.Image.save, []

    def save(self, fp, *args, **kwargs):
        saves.append(fp)
        if len(saves) > 1:
            Path(fp).write_bytes(b"half")
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_save(self, fp, *args, **kwargs)

    monkeypatch.setattr(Image.Image, "save", save)
    result = runner.invoke(app, command)
    monkeypatch.undo()
    assert result.exit_code == 1, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), lines
    assert "No space left on device" in lines[0]
    assert "1 of 10 outputs written" in lines[0] and "makes only the 9 missing" in lines[0]
    # only the writes already queued (2 x workers + batch size) may still have been tried
    assert len(saves) <= 5, "the run went on writing after the disk was full"
    assert [p.name for p in out.iterdir()] == ["c0__x.png"]
    rerun = runner.invoke(app, command)
    assert rerun.exit_code == 0, rerun.output
    assert "done 9, skipped 1" in rerun.output
