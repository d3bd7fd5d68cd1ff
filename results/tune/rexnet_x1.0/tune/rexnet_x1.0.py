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

# OpenVINO as rexbench prepares it: this configuration has no plainer form here (its code is in
# rexbench/measure/backends)
from rexbench.measure.backends.prepare import prepare  # noqa: E402
from rexbench.measure.config import RunConfig  # noqa: E402

CONFIG = {'device': 'cpu',
 'batch_size': 1,
 'resolution': None,
 'dtype': 'fp32',
 'channels_last': False,
 'compile': False,
 'compile_mode': 'default',
 'fold_bn': False,
 'freezing': False,
 'threads': 2,
 'cudnn_benchmark': True,
 'allow_tf32': False,
 'input_shape': None,
 'flush_l2': False,
 'runtime': 'openvino',
 'options': {'quantize': 'int8'}}
prepared = prepare(model, RunConfig.from_dict(CONFIG), input_shape=SHAPE, in_place=True)
run = prepared.run


with torch.inference_mode():
    for _ in range(WARMUP):
        run()
    samples = []
    for _ in range(RUNS):
        start = time.perf_counter_ns()
        run()
        samples.append(time.perf_counter_ns() - start)
print(json.dumps({"median_ms": statistics.median(samples) / 1e6, "runs": RUNS, "threads": THREADS}))
