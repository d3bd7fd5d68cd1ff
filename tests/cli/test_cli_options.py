"""The measurement options: declared once (MeasureOptions), given to a command by @measure_options."""

from __future__ import annotations

import inspect

from rexbench.cli.options import CompileMode, Dtype, MeasureOptions, measure_options
from rexbench.measure.config import ConfigOptions


def test_config_options_take_the_values_of_the_enums_and_leave_input_shape_out():
    measure = MeasureOptions(
        dtype=Dtype.bf16, compile_mode=CompileMode.max_autotune, config=["eager"], input_shape="1x8"
    )
    assert measure.config_options() == ConfigOptions(
        dtype="bf16", compile_mode="max-autotune", names=["eager"]
    )


def test_the_options_replace_the_measure_parameter_in_place():
    seen = []

    @measure_options("config runs", runs=300)
    def command(name: str, *, measure: MeasureOptions, json_out: bool = False) -> None:
        seen.append((name, measure, json_out))

    params = inspect.signature(command).parameters
    assert list(params) == ["name", "config", "runs", "json_out"]
    assert params["runs"].default == 300 and params["config"].default is None
    command(name="x", config=["max"], runs=5, json_out=True)
    assert seen == [("x", MeasureOptions(config=["max"], runs=5), True)]


def test_every_option_by_default_in_the_order_of_the_fields():
    @measure_options()
    def command(*, measure: MeasureOptions) -> MeasureOptions:
        return measure

    names = list(inspect.signature(command).parameters)
    assert names == list(vars(MeasureOptions()))
    assert command(**{n: getattr(MeasureOptions(), n) for n in names}) == MeasureOptions()
