"""``benchmarks/cin_report.py`` and ``samples/cin_vs_reference.py``: the shipped CIN model
against a random-weight reference on tiny images (the figures mean nothing; the plumbing does)."""

from __future__ import annotations

import json
import runpy
import sys

import pytest
import torch
from conftest import REPO, make_image
from PIL import Image

from stylenorm.hub.zoo import load_encoder, load_model
from stylenorm.models.vgg import TAPS
from stylenorm.nn.losses import mean_std_style_loss


@pytest.fixture
def scripts(monkeypatch):
    monkeypatch.syspath_prepend(str(REPO / "benchmarks"))
    monkeypatch.syspath_prepend(str(REPO / "samples"))


@pytest.fixture
def cin_styles(tmp_path):
    """One small image per style of the shipped CIN model, named after it."""
    names = load_model("cin-8styles").style_names
    for k, name in enumerate(names):
        make_image(tmp_path / "styles" / f"{name}.png", (40, 36), seed=k)
    return tmp_path / "styles", names


def test_statistics_distance_is_the_mean_std_style_loss(random_store, scripts, one_thread):
    from cin_report import statistics_vector

    encoder = load_encoder("normalised")
    a, b = torch.rand(1, 3, 40, 56), torch.rand(1, 3, 48, 32)
    with torch.inference_mode():
        fa, fb = encoder(a), encoder(b)
        loss = mean_std_style_loss(fa, fb, TAPS)
        distance = (statistics_vector(fa) - statistics_vector(fb)).pow(2).sum()
    assert distance.item() == pytest.approx(loss.item(), rel=1e-5)


def run_report(monkeypatch, args: list[str]) -> None:
    monkeypatch.setattr(sys, "argv", ["cin_report.py", *args])
    runpy.run_path(str(REPO / "benchmarks" / "cin_report.py"), run_name="__main__")


def test_report_per_style_and_the_reference_cache(random_store, scripts, cin_styles, tmp_path,
                                                  monkeypatch, capsys, one_thread):
    folder, names = cin_styles
    for k in range(2):
        make_image(tmp_path / "contents" / f"c{k}.png", (40, 32), seed=10 + k)
    args = ["--styles", str(folder), "--contents", str(tmp_path / "contents"), "--size", "32",
            "--json", str(tmp_path / "r.json"), "--reference-cache", str(tmp_path / "ref.pt")]
    run_report(monkeypatch, args)
    first = json.loads((tmp_path / "r.json").read_text())
    assert [row["style"] for row in first["styles"]] == names
    for row in first["styles"]:
        assert row["nearest"] != row["style"] and row["nearest"] in names
        assert row["style_ratio"] > 0 and row["distinct_ratio"] > 0
    run_report(monkeypatch, args)
    assert "reference: reused from" in capsys.readouterr().out
    assert json.loads((tmp_path / "r.json").read_text()) == first


def test_report_names_the_missing_style_images(scripts, tmp_path, monkeypatch):
    (tmp_path / "styles").mkdir()
    make_image(tmp_path / "styles" / "candy.png")
    with pytest.raises(SystemExit, match=r"no image for the model's styles \['afremov'"):
        run_report(monkeypatch, ["--styles", str(tmp_path / "styles"), "--contents",
                                 str(tmp_path)])


def test_grid_columns_per_style_two_rows_per_photo_or_skipped(random_store, scripts, cin_styles,
                                                             tmp_path, capsys, one_thread):
    from cin_vs_reference import GAP, HEADER, LABEL_WIDTH, cin_vs_reference

    folder, names = cin_styles
    out = tmp_path / "grid.jpg"
    assert cin_vs_reference("cin-8styles", tmp_path / "absent", ["cat"], output=out) is None
    assert "skipped grid.jpg: no folder of style images" in capsys.readouterr().out
    assert not out.exists()
    cin_vs_reference("cin-8styles", folder, ["cat", "rocket"], render=32, tile=24, output=out)
    assert Image.open(out).size == (LABEL_WIDTH + len(names) * 24, HEADER + 4 * 24 + GAP)
