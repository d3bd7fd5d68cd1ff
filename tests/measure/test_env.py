"""Machine fingerprint (measure.env, measure.nvml): keys, machine id stability, py-cpuinfo caching, NVML
through a fake pynvml."""

from __future__ import annotations

import shutil
import subprocess
import sys
import types
from types import SimpleNamespace

import pytest

from rexbench.measure.machine import env, nvml

CPU = {
    "brand": "Intel(R) Xeon(R) Platinum 8375C CPU @ 2.90GHz",
    "arch": "x86_64",
    "vendor": "GenuineIntel",
    "family": 6,
    "model": 106,
    "usable_cores": 8,
    "flags": ["avx", "avx2", "avx512f", "fma"],
}


class NVMLError(Exception):
    pass


def fake_pynvml(calls: list[str], **overrides) -> types.ModuleType:
    """A stand-in for nvidia-ml-py's pynvml with two devices and known readings."""
    nv = types.ModuleType("pynvml")
    nv.NVMLError = NVMLError
    nv.NVML_TEMPERATURE_GPU, nv.NVML_CLOCK_SM, nv.NVML_CLOCK_MEM = 0, 1, 2
    names = ["NVIDIA A100-SXM4-80GB", "NVIDIA A100-SXM4-80GB"]

    def unsupported(handle, *args):
        raise NVMLError("Not Supported")

    funcs = dict(
        nvmlInit=lambda: calls.append("init"),
        nvmlShutdown=lambda: calls.append("shutdown"),
        nvmlSystemGetDriverVersion=lambda: "550.54.15",
        nvmlDeviceGetCount=lambda: 2,
        nvmlDeviceGetHandleByIndex=lambda i: i,
        nvmlDeviceGetName=lambda h: names[h].encode(),  # older pynvml returns bytes
        nvmlDeviceGetMemoryInfo=lambda h: SimpleNamespace(total=85_899_345_920, used=0, free=0),
        nvmlDeviceGetClockInfo=lambda h, kind: {1: 1410, 2: 1593}[kind] - 10 * h,
        nvmlDeviceGetMaxClockInfo=lambda h, kind: {1: 1410, 2: 1593}[kind],
        nvmlDeviceGetPowerManagementLimit=lambda h: 400_000,  # milliwatts
        nvmlDeviceGetPowerUsage=unsupported,
        nvmlDeviceGetTemperature=lambda h, kind: 40 + h,
        nvmlDeviceGetCurrentClocksEventReasons=lambda h: [0x0, 0x4 | 0x40][h],
    )
    funcs.update(overrides)
    for name, fn in funcs.items():
        setattr(nv, name, fn)
    return nv


@pytest.fixture
def no_gpu(monkeypatch):
    monkeypatch.setitem(sys.modules, "pynvml", None)  # import pynvml -> ImportError


def test_fingerprint_has_every_section(no_gpu):
    fp = env.fingerprint()
    expected = {"machine_id", "hostname", "cpu", "gpus", "gpu_error", "software", "os", "threads"}
    assert expected <= set(fp)
    assert {"brand", "arch", "vendor", "logical_cores", "usable_cores", "flags"} <= set(fp["cpu"])
    assert {"rexbench", "python", "torch", "cuda", "cudnn"} <= set(fp["software"])
    assert isinstance(fp["threads"]["torch_num_threads"], int)
    assert fp["gpus"] == [] and "nvidia-ml-py" in fp["gpu_error"]
    assert fp["machine_id"] == env.machine_id(fp["cpu"], [])


def test_thread_env_vars_recorded(monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    monkeypatch.setenv("OPENBLAS_CORETYPE", "Haswell")
    monkeypatch.delenv("MKL_NUM_THREADS", raising=False)
    threads = env.thread_info()["env"]
    assert threads["OMP_NUM_THREADS"] == "3" and threads["OPENBLAS_CORETYPE"] == "Haswell"
    assert "MKL_NUM_THREADS" not in threads


def test_machine_id_is_readable_stable_and_ignores_volatile_fields(no_gpu, monkeypatch):
    gpu = {"name": "NVIDIA A100-SXM4-80GB", "temperature_c": 40, "sm_clock_mhz": 1410}
    hot = {**gpu, "temperature_c": 83, "sm_clock_mhz": 1100, "throttle_reasons": ["hw_slowdown"]}
    mid = env.machine_id(CPU, [gpu])
    assert mid == env.machine_id(dict(CPU), [hot])
    assert mid.startswith("intel-xeon-platinum-8375c-8c-a100-sxm4-80gb-")
    assert len(mid.rsplit("-", 1)[1]) == 8
    # hardware changes change the id
    assert env.machine_id({**CPU, "usable_cores": 4}, [gpu]) != mid
    assert env.machine_id(CPU, [{"name": "NVIDIA H100 80GB HBM3"}]) != mid
    assert env.machine_id(CPU, [gpu, gpu]).startswith(
        "intel-xeon-platinum-8375c-8c-a100-sxm4-80gb-x2-"
    )
    # hostname, torch version and thread settings are not part of it
    first = env.fingerprint()["machine_id"]
    monkeypatch.setattr(env.socket, "gethostname", lambda: "ci-runner-7f3a")
    monkeypatch.setattr(env, "software_info", lambda: {"torch": "9.9"})
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    second = env.fingerprint()
    assert second["hostname"] == "ci-runner-7f3a" and second["machine_id"] == first


def test_cpu_info_filters_kernel_flags_and_caches_cpuinfo(monkeypatch):
    calls = []

    def get_cpu_info():
        calls.append(1)
        return {
            "brand_raw": "Intel(R) Xeon(R) Platinum 8480+",
            "arch_string_raw": "x86_64",
            "vendor_id_raw": "GenuineIntel",
            "family": 6,
            "model": 143,
            "hz_advertised": [2_000_000_000, 0],
            "flags": ["sse4_2", "avx", "avx2", "fma", "avx512f", "avx512_bf16", "amx_tile", "aes"],
        }

    monkeypatch.setitem(sys.modules, "cpuinfo", SimpleNamespace(get_cpu_info=get_cpu_info))
    env._cpu_static.cache_clear()
    try:
        first, second = env.cpu_info(), env.cpu_info()
    finally:
        env._cpu_static.cache_clear()
    assert calls == [1]
    assert first == second
    assert first["brand"] == "Intel(R) Xeon(R) Platinum 8480+"
    assert first["flags"] == ["amx_tile", "avx", "avx2", "avx512_bf16", "avx512f", "fma"]
    assert first["hz_advertised"] == 2_000_000_000 and first["error"] is None


def test_kernel_flags_arm():
    assert env.kernel_flags(["fp", "asimd", "sve", "sve2", "sha2"]) == ["asimd", "sve", "sve2"]


def test_decode_throttle_reasons():
    assert nvml.decode_throttle_reasons(0) == []
    assert nvml.decode_throttle_reasons(0x4 | 0x40) == ["sw_power_cap", "hw_thermal_slowdown"]
    assert nvml.decode_throttle_reasons(0x1 | 0x800) == ["gpu_idle", "unknown_0x800"]


def test_gpu_info_from_nvml(monkeypatch):
    calls: list[str] = []
    monkeypatch.setitem(sys.modules, "pynvml", fake_pynvml(calls))
    info = env.gpu_info()
    assert info["gpu_error"] is None and calls == ["init", "shutdown"]
    first, second = info["gpus"]
    assert first == {
        "index": 0,
        "name": "NVIDIA A100-SXM4-80GB",
        "memory_total_bytes": 85_899_345_920,
        "sm_clock_max_mhz": 1410,
        "mem_clock_max_mhz": 1593,
        "power_limit_w": 400.0,
        "temperature_c": 40,
        "sm_clock_mhz": 1410,
        "mem_clock_mhz": 1593,
        "power_w": None,  # unsupported on this device: None, the rest still read
        "throttle_mask": 0,
        "throttle_reasons": [],
        "driver": "550.54.15",
    }
    assert second["sm_clock_mhz"] == 1400 and second["temperature_c"] == 41
    assert second["throttle_reasons"] == ["sw_power_cap", "hw_thermal_slowdown"]

    fp = env.fingerprint()
    assert fp["gpus"] == info["gpus"]
    assert "-a100-sxm4-80gb-x2-" in fp["machine_id"]


def test_gpu_snapshot_has_only_volatile_readings(monkeypatch):
    monkeypatch.setitem(sys.modules, "pynvml", fake_pynvml([]))
    snap = env.gpu_snapshot()
    assert snap["gpu_error"] is None and "time" in snap
    assert [g["temperature_c"] for g in snap["gpus"]] == [40, 41]
    assert "name" not in snap["gpus"][0] and "driver" not in snap["gpus"][0]
    assert env.device_snapshot("cuda:1")["gpus"] == snap["gpus"]
    assert "loadavg" in env.device_snapshot("cpu")


def test_old_pynvml_throttle_reasons_name(monkeypatch):
    nv = fake_pynvml([])
    del nv.nvmlDeviceGetCurrentClocksEventReasons
    nv.nvmlDeviceGetCurrentClocksThrottleReasons = lambda h: 0x8
    monkeypatch.setitem(sys.modules, "pynvml", nv)
    assert env.gpu_snapshot()["gpus"][0]["throttle_reasons"] == ["hw_slowdown"]


def test_nvml_init_failure_degrades(monkeypatch):
    def no_driver():
        raise NVMLError("Driver Not Loaded")

    monkeypatch.setitem(sys.modules, "pynvml", fake_pynvml([], nvmlInit=no_driver))
    assert env.gpu_info() == {"gpus": [], "gpu_error": "NVML unavailable: Driver Not Loaded"}
    assert env.fingerprint()["gpus"] == []


def test_nvml_error_while_listing_degrades_and_shuts_down(monkeypatch):
    calls: list[str] = []

    def broken():
        raise NVMLError("GPU is lost")

    monkeypatch.setitem(sys.modules, "pynvml", fake_pynvml(calls, nvmlDeviceGetCount=broken))
    snap = env.gpu_snapshot()
    assert snap["gpus"] == [] and snap["gpu_error"] == "NVML error: GPU is lost"
    assert calls == ["init", "shutdown"]


def test_differences_lists_what_matters():
    a = {
        "machine_id": "m-1",
        "software": {"torch": "2.4.0", "cuda": None, "python": "3.11.7"},
        "threads": {"torch_num_threads": 2, "env": {}},
    }
    assert env.differences(a, a) == []
    b = {**a, "software": {**a["software"], "torch": "2.5.0"}, "hostname": "other"}
    assert env.differences(a, b) == ["torch: 2.4.0 vs 2.5.0"]
    c = {**b, "machine_id": "m-2", "threads": {"torch_num_threads": 1, "env": {}}}
    assert env.differences(a, c) == [
        "machine: m-1 vs m-2",
        "torch: 2.4.0 vs 2.5.0",
        "threads.torch_num_threads: 2 vs 1",
    ]


@pytest.mark.skipif(shutil.which("git") is None, reason="git not installed")
def test_git_info(tmp_path):
    assert env.git_info(tmp_path) is None
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t", "-C", str(tmp_path)]
    subprocess.run([*git, "init", "-q"], check=True)
    (tmp_path / "a.txt").write_text("1")
    subprocess.run([*git, "add", "a.txt"], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "x"], check=True)
    head = subprocess.run([*git, "rev-parse", "HEAD"], capture_output=True, text=True).stdout
    date = subprocess.run([*git, "show", "-s", "--format=%cI"], capture_output=True, text=True)
    assert env.git_info(tmp_path) == {
        "commit": head.strip(),
        "dirty": False,
        "date": date.stdout.strip(),
    }
    (tmp_path / "a.txt").write_text("2")
    assert env.git_info(tmp_path)["dirty"] is True


def test_machine_id_override_names_the_machine_and_keeps_the_hardware_id(monkeypatch) -> None:
    monkeypatch.delenv(env.MACHINE_ID_VAR, raising=False)
    hardware = env.machine_id(CPU, [])
    assert env.hardware_id(CPU, []) == hardware and "hardware_id" not in env.fingerprint()
    monkeypatch.setenv(env.MACHINE_ID_VAR, "  rack-2-node-7 ")
    assert env.machine_id(CPU, []) == "rack-2-node-7"
    fp = env.fingerprint()
    assert fp["machine_id"] == "rack-2-node-7" and fp["hardware_id"] == env.hardware_id()
    monkeypatch.setenv(env.MACHINE_ID_VAR, " ")
    assert env.machine_id(CPU, []) == hardware
