"""The paper's relative claims (checkable as ratios of two models' numbers) and known inconsistencies.

Each claim cites its section or table; `Claim.from_table()` recomputes it from the printed rows in
`rexbench.paper.tables`, `Claim.compute()` from measurements. Each inconsistency lists the sources that
disagree. Facts: the paper text; the exact counts of the reference implementations (tests/data/reference_counts.json).
Pure data: no torch.
"""

from __future__ import annotations

from dataclasses import dataclass

from rexbench.paper.tables import row
from rexbench.registry import MODELS

# --- relative claims a measurement can check ------------------------------------------------------


TIE = "tie (within CI)"


@dataclass(frozen=True)
class Claim:
    """A relative statement of the paper, as a ratio of two models' numbers.

    metric "cpu"/"gpu"/"gpu_fp16": speedup = baseline latency / model latency (> 1: `model` faster).
    metric "top1": gain = model top-1 - baseline top-1, in percentage points.
    relation: "≈" about `stated`, "≥" at least `stated`, ">" more than `stated`.
    """

    id: str
    source: str
    statement: str
    model: str
    baseline: str
    metric: str
    stated: float
    relation: str = "≈"
    table: str = "Table 5"
    baseline_table: str = ""  # default: `table`
    marks: str = ""  # Table 4 rows: "†" or "†*"
    note: str = ""

    @property
    def kind(self) -> str:
        return "gain_pp" if self.metric == "top1" else "speedup"

    def compute(self, model_value: float, baseline_value: float) -> float:
        """The claim's quantity from two measurements (latencies in any one unit, or top-1 in %)."""
        if self.kind == "gain_pp":
            return round(model_value - baseline_value, 6)
        return baseline_value / model_value

    def from_table(self) -> float:
        """The claim's quantity computed from the printed table rows."""
        mine = row(self.model, self.table, self.marks).metric(self.metric)
        other = row(self.baseline, self.baseline_table or self.table, self.marks).metric(
            self.metric
        )
        if mine is None or other is None:
            raise ValueError(f"claim {self.id!r}: {self.metric} is not printed for both rows")
        return self.compute(mine.value, other.value)

    def holds(self, value: float, tolerance: float | None = None) -> bool:
        """Does `value` support the claim? "≈" allows 10% relative (speedup) or 0.5pp (top-1)."""
        if self.relation == ">":
            return value > self.stated
        if self.relation == "≥":
            return value >= self.stated
        if tolerance is None:
            tolerance = 0.5 if self.kind == "gain_pp" else 0.1 * abs(self.stated)
        return abs(value - self.stated) <= tolerance

    def edges(self) -> tuple[float, ...]:
        """Where the claim turns from true to false: `stated` for ">" and "≥", the two ends of the
        tolerated band for "≈"."""
        if self.relation in (">", "≥"):
            return (self.stated,)
        tolerance = 0.5 if self.kind == "gain_pp" else 0.1 * abs(self.stated)
        return (self.stated - tolerance, self.stated + tolerance)

    def verdict(self, value: float, low: float, high: float) -> str:
        """ "yes" or "no" when the interval [low, high] of the measured value lies on one side of
        every edge; "tie (within CI)" when it contains one (the measurement cannot tell)."""
        if any(low <= edge <= high for edge in self.edges()):
            return TIE
        return "yes" if self.holds(value) else "no"


def _counterparts() -> tuple[Claim, ...]:
    """Figure 3 caption: ReXNet beats each EfficientNet counterpart; Appendix B.4: so does ReXNet-lite.

    Pairs by accuracy as Figure 3 and Table A2 order them (rexbench's reading; x2.0/B3 is stated).
    """
    out = []
    for rex, eff in (("x1.0", "b0"), ("x1.3", "b1"), ("x1.5", "b2")):
        for dev in ("cpu", "gpu"):
            text = f"ReXNet ({rex}) is at least as fast as EfficientNet-{eff.upper()} ({dev})"
            out.append(
                Claim(
                    id=f"rexnet_{rex}_vs_{eff}_{dev}",
                    source="Figure 3 caption (Table 5)",
                    statement=text,
                    model=f"rexnet_{rex}",
                    baseline=f"efficientnet_{eff}",
                    metric=dev,
                    stated=1.0,
                    relation="≥",
                )
            )
    for rex, eff in (("x1.0", "0"), ("x1.3", "1"), ("x1.5", "2"), ("x2.0", "3")):
        for dev in ("cpu", "gpu", "gpu_fp16"):
            text = f"ReXNet-lite ({rex}) is faster than EfficientNet-lite{eff} ({dev})"
            out.append(
                Claim(
                    id=f"rexnet_lite_{rex}_vs_lite{eff}_{dev}",
                    source="Appendix B.4 (Table A2)",
                    statement=text,
                    model=f"rexnet_lite_{rex}",
                    baseline=f"efficientnet_lite{eff}",
                    metric=dev,
                    stated=1.0,
                    relation=">",
                    table="Table A2",
                )
            )
    return tuple(out)


CLAIMS: tuple[Claim, ...] = (
    Claim("rexnet_x2.0_vs_b3_cpu", "§5.1 'Comparison with EfficientNets' (Table 5)",
          "ReXNet (x2.0) is about 1.4x faster than EfficientNet-B3 on CPU",
          "rexnet_x2.0", "efficientnet_b3", "cpu", 1.4),
    Claim("rexnet_x2.0_vs_b3_gpu", "§5.1 'Comparison with EfficientNets' (Table 5)",
          "ReXNet (x2.0) is about 2.0x faster than EfficientNet-B3 on GPU",
          "rexnet_x2.0", "efficientnet_b3", "gpu", 2.0),
    Claim("rexnet_x2.0_vs_b1_top1", "§5.1 'Comparison with EfficientNets' (Table 5)",
          "ReXNet (x2.0) improves top-1 by +2.5pp over EfficientNet-B1",
          "rexnet_x2.0", "efficientnet_b1", "top1", 2.5,
          note="Table 5 gives 81.6 - 79.2 = 2.4pp"),
    Claim("rexnet_x2.0_vs_b1_cpu", "§5.1 'Comparison with EfficientNets' (Table 5)",
          "ReXNet (x2.0) runs at a similar speed to EfficientNet-B1 on CPU (with +2.5pp top-1)",
          "rexnet_x2.0", "efficientnet_b1", "cpu", 1.0),
    Claim("rexnet_x2.0_vs_b1_gpu", "§5.1 'Comparison with EfficientNets' (Table 5)",
          "ReXNet (x2.0) runs at a similar speed to EfficientNet-B1 on GPU (with +2.5pp top-1)",
          "rexnet_x2.0", "efficientnet_b1", "gpu", 1.0),
    *_counterparts(),
    Claim("rexnet_plain_vs_x0.9_cpu", "Appendix B.2 (Table A1)",
          "ReXNet (plain) is much faster than the ReXNets on CPU, despite more FLOPs",
          "rexnet_plain", "rexnet_x0.9", "cpu", 1.0, ">", table="Table A1"),
    Claim("rexnet_plain_vs_x0.9_gpu", "Appendix B.2 (Table A1)",
          "ReXNet (plain) is much faster than the ReXNets on GPU, despite more FLOPs",
          "rexnet_plain", "rexnet_x0.9", "gpu", 1.0, ">", table="Table A1"),
    Claim("rexnet_plain_vs_v1_top1", "§4.4", "ReXNet (plain) gains +2.3pp over MobileNetV1 (72.5%)",
          "rexnet_plain", "mobilenet_v1", "top1", 2.3, table="Table A1", baseline_table="Table 4",
          note="the 72.5% baseline is not Table 4's 70.6%, so the tables give 4.2pp"),
    Claim("rexnet_x1.0_vs_b0_top1", "§5.1 (Table 4, †)",
          "ReXNet (x1.0) beats EfficientNet-B0 without AutoAug by at least +0.3pp",
          "rexnet_x1.0", "efficientnet_b0", "top1", 0.3, "≥", table="Table 4", marks="†"),
    Claim("rexnet_x1.0_vs_v3_large_top1", "§5.1 (Table 4, †)",
          "ReXNet (x1.0) beats MobileNetV3-Large by at least +0.3pp",
          "rexnet_x1.0", "mobilenet_v3_large", "top1", 0.3, "≥", table="Table 4", marks="†"),
    Claim("rexnet_x1.0_vs_b0_aug_top1", "§5.1 (Table 4, †*)",
          "with RandAug, ReXNet (x1.0) beats EfficientNet-B0 with AutoAug by at least +0.4pp",
          "rexnet_x1.0", "efficientnet_b0", "top1", 0.4, "≥", table="Table 4", marks="†*"),
)  # fmt: skip


# --- known inconsistencies between the paper, the official README and the reference code ----------


@dataclass(frozen=True)
class Inconsistency:
    """Two sources that disagree about one number; `values` are (source, value as printed/measured)."""

    id: str
    model: str | None
    fields: tuple[str, ...]
    summary: str
    values: tuple[tuple[str, str], ...]


INCONSISTENCIES: tuple[Inconsistency, ...] = (
    Inconsistency("rexnet_x1.5_flops", "rexnet_x1.5", ("flops",),
                  "x1.5 FLOPs: three printed values; the official code rounds to 0.88B",
                  (("Table A1", "0.86B"), ("Table 5", "0.9B"), ("official README", "0.88B"),
                   ("official code", "875,828,154 MACs"))),
    Inconsistency("readme_rexnet_x2.0", "rexnet_x2.0", ("flops", "params"),
                  "the README's ReXNets-vs-EfficientNets table prints x2.2's figures for x2.0",
                  (("official README comparison table", "1.8B/19M"), ("Tables 5, A1", "1.5B/16M"),
                   ("official README pretrained table", "1.5B/16M"))),
    Inconsistency("rexnet_x0.9_cpu", "rexnet_x0.9", ("cpu",), "x0.9 CPU latency differs between tables",
                  (("Table 5", "45ms"), ("Table A1", "46ms"), ("official README", "45ms"))),
    Inconsistency("rexnet_x3.0_params", "rexnet_x3.0", ("params",),
                  "34.71M parameters print as 34M (truncated; rounding gives 35M)",
                  (("Table A1", "34M"), ("official code", "34,708,792"))),
    Inconsistency("rexnet_lite_x1.3_params", "rexnet_lite_x1.3", ("params",),
                  "6,747,960 parameters print as 6.8M (rounding gives 6.7M); the README prints 6.8M too",
                  (("Table A2", "6.8M"), ("official code", "6,747,960"))),
    Inconsistency("mobilenet_v2_x1.4_counts", "mobilenet_v2_x1.4", ("params", "flops"),
                  "Table 4 repeats the MobileNetV2 paper's 6.9M/0.59B; torchvision's x1.4 has 6.1M/0.58B",
                  (("Table 4", "6.9M / 0.59B"), ("torchvision", "6,108,776 / 582,195,824 MACs"))),
    Inconsistency("mobilenet_v3_large_params", "mobilenet_v3_large", ("params",),
                  "Table 4 prints 5.4M; torchvision's model has 5.48M (5.5M)",
                  (("Table 4", "5.4M"), ("torchvision", "5,483,032"))),
    Inconsistency("efficientnet_b2_params", "efficientnet_b2", ("params",),
                  "Table 5 prints 9.2M; torchvision's model has 9.11M (9.1M)",
                  (("Table 5", "9.2M"), ("torchvision", "9,109,994"))),
    Inconsistency("efficientnet_b1_flops", "efficientnet_b1", ("flops",),
                  "Table 5 prints 0.70B; conv MACs at 240x240 are 0.687B (0.69B)",
                  (("Table 5", "0.70B"), ("torchvision @240", "686,802,832 MACs"))),
    Inconsistency("mobilenet_v1_flops", "mobilenet_v1", ("flops",),
                  "Table 4 prints 0.56B; MobileNetV1 has 0.569B MACs (0.57B)",
                  (("Table 4", "0.56B"), ("timm mobilenetv1_100", "568,740,352 MACs"))),
    Inconsistency("table1_mobilenet_v2_params", "mobilenet_v2", ("params",),
                  "Table 1 prints other params for MobileNetV2 than Table 4 (torchvision: 3,504,872)",
                  (("Table 1", "3.4M"), ("Table 4", "3.5M"))),
    Inconsistency("table1_efficientnet_b0_params", "efficientnet_b0", ("params",),
                  "Table 1 prints 4.8M for EfficientNet-B0 (torchvision: 5,288,548) and its †* top-1",
                  (("Table 1", "77.3% / 4.8M"), ("Tables 4, 5", "5.3M"))),
    Inconsistency("mobilenet_v1_top1", "mobilenet_v1", ("top1",),
                  "§4.4's MobileNetV1 baseline (72.5%) is not Table 4's",
                  (("Table 4", "70.6%"), ("§4.4", "72.5% (+2.3pp -> ReXNet (plain) 74.8%)"))),
    Inconsistency("rexnet_x2.0_vs_b1_gain", "rexnet_x2.0", ("top1",),
                  "§5.1's +2.5pp over EfficientNet-B1 is 2.4pp in Table 5 (x2.2 in Table A1 gives 2.5pp)",
                  (("§5.1", "+2.5pp"), ("Table 5", "81.6% - 79.2% = 2.4pp"))),
    Inconsistency("rexnet_lite_x1.0_speed", "rexnet_lite_x1.0", ("cpu", "gpu"),
                  "B.4: each ReXNet-lite is faster than its counterpart; x1.0 is slower on CPU, GPU FP32",
                  (("Table A2 ReX-lite (x1.0) CPU/GPU/FP16", "31ms / 22ms / 14ms"),
                   ("Table A2 Eff-lite0 CPU/GPU/FP16", "30ms / 21ms / 15ms"))),
    Inconsistency("cpu_model", None, ("cpu",), "the CPU model is named differently",
                  (("paper §5.1, B.4", "Intel Xeon CPU E5-2630"), ("official README", "Xeon E5-2630 v4"))),
)  # fmt: skip


# --- lookups ---------------------------------------------------------------------------------------


def claims(model: str | None = None) -> tuple[Claim, ...]:
    """The paper's relative claims, optionally those involving `model` (as subject or baseline)."""
    if model is None:
        return CLAIMS
    canonical = MODELS.canonical(model)
    return tuple(c for c in CLAIMS if canonical in (c.model, c.baseline))


def inconsistencies(model: str | None = None) -> tuple[Inconsistency, ...]:
    """Known inconsistencies, optionally those about `model`."""
    if model is None:
        return INCONSISTENCIES
    canonical = MODELS.canonical(model)
    return tuple(i for i in INCONSISTENCIES if i.model == canonical)
