"""Taking measurements, one room per concern (docs/architecture.md):

- config: run configurations (presets, device, batch, threads); pure, no torch;
- machine/: what the machine is and does to a run (fingerprint, allocator, contention, placement, NVML);
- timing/: the timing loop, device operations, the drift anchor, timer agreement;
- backends/: how a model is prepared and run (PyTorch presets, CUDA graphs, ONNX Runtime, OpenVINO);
- counting/: parameters, multiply-adds and instructions per call;
- checks/: whether a measurement can be trusted (output parity, validity, summary and warnings);
- run/: the orchestration that turns the rooms into records (profile, rounds, sweep).
"""
