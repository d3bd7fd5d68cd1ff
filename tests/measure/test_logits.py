"""A prepared configuration's outputs on given inputs, through the call the timing loop times, on
PyTorch, ONNX Runtime and OpenVINO (real runtimes), fed in the prepared input's own form."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from _tune_nets import WIDE, write_wide

from rexbench.measure.backends.prepare import prepare
from rexbench.measure.checks.fidelity import torch_logits
from rexbench.measure.checks.logits import like, prepared_logits
from rexbench.measure.checks.parity import seeded_model
from rexbench.measure.config import RunConfig

pytestmark = pytest.mark.usefixtures("one_thread")
INPUTS = np.random.default_rng(0).standard_normal((10, 3, 16, 16)).astype(np.float32)


@pytest.fixture
def wide(tmp_path, monkeypatch):
    write_wide(tmp_path)
    monkeypatch.chdir(tmp_path)
    return seeded_model(WIDE)


def test_inputs_take_the_form_of_the_prepared_input() -> None:
    nhwc = torch.zeros(1, 3, 4, 4, dtype=torch.bfloat16).contiguous(
        memory_format=torch.channels_last
    )
    x = like(nhwc, INPUTS[:1, :, :4, :4])
    assert x.dtype == torch.bfloat16 and x.is_contiguous(memory_format=torch.channels_last)
    assert not x.is_contiguous()
    plain = like(torch.zeros(2, 3, 4, 4), INPUTS[:2, :, :4, :4])
    assert plain.dtype == torch.float32 and plain.is_contiguous()
    assert torch.equal(plain, torch.from_numpy(np.ascontiguousarray(INPUTS[:2, :, :4, :4])))
    half = like(np.zeros((1, 3), dtype=np.float16), np.ones((1, 3), dtype=np.float32))
    assert half.dtype == np.float16 and half.flags["C_CONTIGUOUS"]
    with pytest.raises(TypeError, match="cannot feed a list input"):
        like([0.0], INPUTS)


@pytest.mark.parametrize("name", ["eager", "channels_last", "ort", "openvino"])
def test_every_runtime_gives_the_eager_logits_row_by_row(wide, name: str) -> None:
    reference = torch_logits(wide, INPUTS)
    prepared = prepare(wide, RunConfig.preset(name, threads=1), input_shape=(3, 16, 16))
    logits = prepared_logits(prepared, INPUTS)
    assert logits.shape == (10, 10) and logits.dtype == np.float32
    np.testing.assert_allclose(logits, reference, rtol=1e-5, atol=1e-6)


def test_a_last_chunk_short_of_the_batch_is_padded_and_dropped(wide) -> None:
    prepared = prepare(
        wide, RunConfig.preset("ort", threads=1, batch_size=4), input_shape=(3, 16, 16)
    )
    assert prepared.input.shape[0] == 4  # 10 rows: 4 + 4 + 2 (padded with its own rows)
    logits = prepared_logits(prepared, INPUTS)
    assert logits.shape == (10, 10)
    np.testing.assert_allclose(logits, torch_logits(wide, INPUTS), rtol=1e-5, atol=1e-6)


def test_models_built_without_a_checkpoint_are_the_same_network_every_time(wide) -> None:
    again = seeded_model(WIDE)
    assert all(
        torch.equal(a, b)
        for a, b in zip(wide.state_dict().values(), again.state_dict().values(), strict=True)
    )
    before = torch.get_rng_state()
    seeded_model(WIDE)
    assert torch.equal(torch.get_rng_state(), before)  # the caller's RNG is left as it was
