"""rexnet_x1.0 as `rexbench tune` recommends for this machine: openvino_int8, 2 thread(s), the steady allocator, batch 1.

Run it with `python THIS_FILE [RUNS]` (from the folder tune ran in, for a py: model). It restarts
itself once with the environment below (an allocator and the thread pools are set up before Python
starts), prepares the model with the runtime's own API, times RUNS calls (default 200) after
20 warm-up calls and prints one JSON line with the median.
"""

import json
import os
import statistics
import sys
import time

ENV = {'MALLOC_MMAP_MAX_': '0',
 'MALLOC_TRIM_THRESHOLD_': '2147483647',
 'OMP_NUM_THREADS': '2',
 'MKL_NUM_THREADS': '2'}
UNSET = []

if os.environ.get("REXBENCH_SNIPPET_ENV") != "1":
    env = {k: v for k, v in os.environ.items() if k not in UNSET}
    env.update(ENV, REXBENCH_SNIPPET_ENV="1")
    os.execve(sys.executable, [sys.executable, *sys.argv], env)

import torch  # noqa: E402

import rexbench  # noqa: E402

THREADS = 2
BATCH = 1
SHAPE = (3, 224, 224)
RUNS = int(sys.argv[1]) if len(sys.argv) > 1 else 200
WARMUP = 20

torch.set_num_threads(THREADS)
model = rexbench.create_model('rexnet_x1.0').eval()
x = torch.randn(BATCH, *SHAPE, generator=torch.Generator().manual_seed(0))

# Calibration: rexbench's calibration photographs (the calibration half of its fidelity set, crops
# of the photographs scikit-image ships), at the input's resolution, normalised as the weights
# expect, BATCH at a time, the last batch filled up with the first photographs again. For your
# deployment put images of your own data here: an N x 3 x RESOLUTION x RESOLUTION float32 array,
# normalised with the mean and std the weights expect (of 0-1 RGB pixels).
import numpy as np  # noqa: E402

from rexbench.models.photos import fidelity_inputs  # noqa: E402

RESOLUTION = 224
MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)
inputs = fidelity_inputs(RESOLUTION, "calibration", MEAN, STD)
rows = -(-len(inputs) // BATCH) * BATCH  # whole batches of BATCH inputs
inputs = np.resize(inputs, (rows, *inputs.shape[1:]))  # the first inputs again at the end
batches = np.split(inputs, rows // BATCH)

# OpenVINO: the module converted, compiled for the CPU with these properties
import openvino as ov  # noqa: E402

with torch.no_grad():
    ov_model = ov.convert_model(model, example_input=x)

# int8 by NNCF's post-training quantization with its defaults, on every calibration batch (its
# progress bars on stderr: stdout keeps the one JSON line)
import contextlib  # noqa: E402
import logging  # noqa: E402

import nncf  # noqa: E402

nncf.set_log_level(logging.ERROR)
with contextlib.redirect_stdout(sys.stderr):
    ov_model = nncf.quantize(ov_model, nncf.Dataset(batches), subset_size=len(batches))

compiled = ov.Core().compile_model(ov_model, "CPU", {
    'PERFORMANCE_HINT': 'LATENCY',
    'INFERENCE_NUM_THREADS': THREADS,
    'INFERENCE_PRECISION_HINT': 'f32',
})
request = compiled.create_infer_request()
array = x.numpy()


def run():
    return request.infer([array], share_inputs=True, share_outputs=True)


# `rexbench tune` checks this file by running it with REXBENCH_PARTS=K: the timed calls are then
# made in K parts, each after a line on stdin, and rexbench times its own worker's calls of the
# same configuration in between, so that both see the machine alike. Run by hand: one loop.
PARTS = int(os.environ.get("REXBENCH_PARTS", "1"))

with torch.inference_mode():
    for _ in range(WARMUP):
        run()
    samples = []
    for part in range(PARTS):
        if PARTS > 1:
            print("ready", flush=True)
            sys.stdin.readline()
        while len(samples) < RUNS * (part + 1) // PARTS:
            start = time.perf_counter_ns()
            run()
            samples.append(time.perf_counter_ns() - start)
print(json.dumps({"median_ms": statistics.median(samples) / 1e6, "runs": RUNS, "threads": THREADS}))
