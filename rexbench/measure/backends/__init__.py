"""Backends: how a built model is prepared to run (PyTorch presets, CUDA graphs, ONNX Runtime, OpenVINO)."""
