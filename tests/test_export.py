"""ONNX export of the lite model: the model's own definition traced (eager parity at every
alpha, torch.export with dynamic sizes), onnxruntime parity, CLI and errors."""

from __future__ import annotations

import pytest
import torch
from typer.testing import CliRunner

from stylenorm.cli.app import app
from stylenorm.hub.files import save_weights
from stylenorm.inference.export import Exportable, dynamic_shapes, example_inputs, export_onnx
from stylenorm.models.lite import LiteConfig, LiteModel
from stylenorm.models.shapes import round_ratio

pytestmark = pytest.mark.usefixtures("one_thread")
runner = CliRunner()
# (content H, W), (style H, W), alpha: sides not multiples of 4, one style at style_size already
# and one whose resized width is a rounding tie (65 * 32 / 64 = 32.5)
CASES = [((37, 50), (45, 61), 1.0), ((64, 48), (45, 61), 0.5), ((64, 48), (64, 65), 1.0),
         ((40, 37), (32, 40), 0.3)]


def run(*args):
    return runner.invoke(app, [str(a) for a in args])


def tiny_lite_model() -> LiteModel:
    """A random tiny lite model whose output spreads over [0, 1] and depends on the style, with
    every part the shipped default has (a half-resolution block included)."""
    torch.manual_seed(0)
    config = LiteConfig(widths=(8, 8, 8), res_blocks=1, style_size=32, style_mlp=8, style_deep=8,
                        half_blocks=1)
    model = LiteModel(config).eval()
    with torch.no_grad():
        for modulator in model.modulators:
            modulator.linear.weight.add_(0.3 * torch.randn_like(modulator.linear.weight))
        model.style_film.out.weight.normal_(0, 0.3)
        model.style_film.half_out.weight.normal_(0, 0.3)
        model.decoder.out.weight.mul_(4)
        model.decoder.out.bias.fill_(0.5)
    return model


@pytest.fixture(scope="module")
def model() -> LiteModel:
    return tiny_lite_model()


@pytest.fixture(scope="module")
def model_file(model, tmp_path_factory):
    path = tmp_path_factory.mktemp("lite") / "tiny-lite.safetensors"
    return save_weights(path, model.state_dict(), "lite", model.config.to_dict(), {})


def onnxruntime_session(export):
    """Skip unless the [onnx] extra is installed; else run ``export()`` and open its file."""
    for package in ("onnx", "onnxscript", "onnxruntime"):
        pytest.importorskip(package, reason=f'needs {package}: pip install -e ".[onnx]"')
    import onnxruntime

    return onnxruntime.InferenceSession(str(export()), providers=["CPUExecutionProvider"])


@pytest.fixture(scope="module")
def python_export(model, tmp_path_factory):
    """An onnxruntime session of the model exported by ``export_onnx``."""
    return onnxruntime_session(
        lambda: export_onnx(model, tmp_path_factory.mktemp("onnx") / "model.onnx"))


def reference(model: LiteModel, content, style, alpha: float) -> torch.Tensor:
    """What ``Stylizer.render`` computes for the lite model."""
    h, w = content.shape[-2:]
    with torch.no_grad():
        return model(content, model.style_code(style), alpha)[..., :h, :w].clamp(0, 1)


def onnx_errors(session, model, content_size, style_size, alpha) -> tuple[float, float]:
    """Mean and max absolute difference between onnxruntime and PyTorch."""
    content, style = torch.rand(1, 3, *content_size), torch.rand(1, 3, *style_size)
    feeds = {"content": content.numpy(), "style": style.numpy(),
             "alpha": torch.tensor(alpha).numpy()}
    image = torch.from_numpy(session.run(["image"], feeds)[0])
    assert image.shape == (1, 3, *content_size)
    error = (image - reference(model, content, style, alpha)).abs()
    return error.mean().item(), error.max().item()


def test_round_ratio_is_pythons_round():
    for numerator in range(1, 300):
        for denominator in range(1, 40):
            assert round_ratio(numerator, denominator) == round(numerator / denominator)


@pytest.mark.parametrize("content_size,style_size,alpha", CASES)
def test_exportable_equals_the_eager_model(model, content_size, style_size, alpha):
    """A tensor alpha takes the model's alpha < 1 path, which at 1 adds exactly nothing."""
    content, style = torch.rand(1, 3, *content_size), torch.rand(1, 3, *style_size)
    with torch.no_grad():
        image = Exportable(model)(content, style, torch.tensor(alpha))
    assert torch.equal(image, reference(model, content, style, alpha))


@pytest.fixture(scope="module")
def traced(model):
    """The program torch.export makes of the model, which the ONNX graph is written from."""
    program = torch.export.export(Exportable(model).eval(), example_inputs(),
                                  dynamic_shapes=dynamic_shapes())
    return program.module()


@pytest.mark.parametrize("content_size,style_size,alpha", [*CASES, ((33, 35), (90, 20), 0.0)])
def test_the_traced_program_is_the_eager_model_at_every_alpha(traced, model, content_size,
                                                               style_size, alpha):
    """Sizes stay dynamic (no guard on a size), and below alpha 1 the model's own code and
    detail are in the graph: equal to the eager model, bit for bit."""
    content, style = torch.rand(1, 3, *content_size), torch.rand(1, 3, *style_size)
    with torch.no_grad():
        image = traced(content, style, torch.tensor(alpha))
    assert torch.equal(image, reference(model, content, style, alpha))


@pytest.mark.parametrize("content_size,style_size,alpha", CASES)
def test_python_export_matches_pytorch(python_export, model, content_size, style_size, alpha):
    mean_error, max_error = onnx_errors(python_export, model, content_size, style_size, alpha)
    assert mean_error < 1e-3  # the bar; float32 rounding gives ~1e-8
    assert max_error < 1e-4


def test_exported_graph_has_dynamic_sides(python_export):
    shapes = {i.name: i.shape for i in python_export.get_inputs()}
    assert shapes == {"content": [1, 3, "height", "width"],
                      "style": [1, 3, "style_height", "style_width"], "alpha": []}
    assert python_export.get_outputs()[0].shape == [1, 3, "height", "width"]


def test_cli_export(model, model_file, tmp_path):
    output = tmp_path / "model.onnx"
    session = onnxruntime_session(lambda: cli_export(model_file, output))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.onnx"]  # no temp, no .data
    mean_error, _ = onnx_errors(session, model, (37, 50), (45, 61), 1.0)
    assert mean_error < 1e-3


def cli_export(model_file, output):
    result = run("export", model_file, "--format", "onnx", "-o", output)
    assert result.exit_code == 0, result.output
    assert result.output.strip() == f"wrote {output}"
    return output


def assert_one_error_line(result, message: str) -> None:
    assert result.exit_code != 0
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], lines
    assert "Traceback" not in result.output


@pytest.mark.parametrize("name,message", [
    ("adain", "export supports the lite model; adain is a model of kind 'adain'"),
    ("missing.safetensors", "missing.safetensors: no such weights file"),
    ("nope", "no weights named 'nope'"),
])
def test_cli_refuses_other_models(random_store, tmp_path, name, message):
    assert_one_error_line(run("export", name, "-o", tmp_path / "m.onnx"), message)
    assert not (tmp_path / "m.onnx").exists()


@pytest.mark.parametrize("output,message", [
    ("missing/m.onnx", "output folder {tmp}/missing does not exist"),
    ("afile/m.onnx", "output folder {tmp}/afile is not a folder"),
    ("", "is a directory"),  # the folder itself
])
def test_cli_refuses_unwritable_outputs(model_file, tmp_path, output, message):
    (tmp_path / "afile").write_text("not a folder")
    result = run("export", model_file, "-o", tmp_path / output)
    assert_one_error_line(result, message.format(tmp=tmp_path))


def test_cli_refuses_other_formats(model_file, tmp_path):
    result = run("export", model_file, "--format", "tflite", "-o", tmp_path / "m.tflite")
    assert_one_error_line(result, "'tflite' is not one of 'onnx'")


def test_cli_says_how_to_install_onnx(model_file, tmp_path, monkeypatch):
    import importlib.util

    find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "onnxscript" else find_spec(name, *a))
    result = run("export", model_file, "-o", tmp_path / "m.onnx")
    assert_one_error_line(result, 'pip install -e ".[onnx]" in the stylenorm repository folder')


def test_python_export_refuses_other_modules(tmp_path):
    with pytest.raises(ValueError, match="export supports the lite model; got a Conv2d"):
        export_onnx(torch.nn.Conv2d(3, 3, 1), tmp_path / "m.onnx")
