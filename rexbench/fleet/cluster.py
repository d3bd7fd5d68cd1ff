"""Connecting to a Ray cluster and choosing its nodes.

`--cluster ADDRESS`: `auto` joins the Ray cluster this machine belongs to (`ray start` was run here,
or RAY_ADDRESS is set), `local` starts a one-machine cluster inside this process for trying things
out, and anything else is the head's `HOST:PORT` or a Ray client `ray://HOST:PORT`. A driver that is
already connected (`ray.init()` called by a program using the library) is used as it is.

A node is chosen by its Ray labels (`ray start --labels gpu=a100,rack=2`): `--nodes gpu=a100`
keeps the nodes carrying every label given. A node without CPUs (a head started with
`--num-cpus 0`, as Ray advises for large clusters) runs no benchmark.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

from rexbench.errors import RexbenchError, first_line
from rexbench.spec import split_values

AUTO, LOCAL = "auto", "local"
INSTALL_HINT = "pip install 'rexbench[cluster]'"
CONNECT_TIMEOUT_S = 5.0
AUTH_LOGGER = "ray._private.authentication.authentication_token_setup"  # where Ray logs it
AUTH_NOTICE = "Token authentication is enabled for this Ray cluster"
AUTH_HINT = (
    "a cluster started with Ray's token authentication (its default) needs RAY_AUTH_MODE=token and "
    "the cluster's token (RAY_AUTH_TOKEN or ~/.ray/auth_token) here; see docs/fleet.md"
)


def import_ray() -> ModuleType:
    """The ray module, or one line saying how to install it."""
    try:
        import ray
    except ImportError:
        raise RexbenchError(f"--cluster needs Ray, an optional extra: {INSTALL_HINT}") from None
    return ray


@dataclass(frozen=True)
class Node:
    """One alive node of the cluster, as `ray.nodes()` describes it."""

    node_id: str
    address: str
    hostname: str
    labels: Mapping[str, str] = field(default_factory=dict)
    cpus: float = 0.0
    gpus: float = 0.0

    @property
    def name(self) -> str:
        """Readable and unique: the host name (or address) and the start of the Ray node id."""
        return f"{self.hostname or self.address}:{self.node_id[:6]}"

    def whole(self) -> dict[str, Any]:
        """Task options that take every CPU and GPU of this node, on this node only: no other task
        that needs a CPU or GPU (another rexbench benchmark included) runs there meanwhile."""
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        return {
            "num_cpus": self.cpus,
            "num_gpus": self.gpus,
            "scheduling_strategy": NodeAffinitySchedulingStrategy(self.node_id, soft=False),
        }

    def pinned(self) -> dict[str, Any]:
        """Task options that run a light task on this node without reserving anything."""
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        return {
            "num_cpus": 0,
            "scheduling_strategy": NodeAffinitySchedulingStrategy(self.node_id, soft=False),
        }


def _split_address(address: str) -> tuple[str, int]:
    rest = address.removeprefix("ray://")
    host, sep, port = rest.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise RexbenchError(
            f"--cluster {address}: expected auto, local, HOST:PORT or ray://HOST:PORT "
            "(the address `ray start --head` printed)"
        )
    return host.strip("[]"), int(port)


def _check_reachable(address: str) -> None:
    """Fail in seconds, with one line, where Ray would retry an unreachable address for minutes."""
    host, port = _split_address(address)
    try:
        with socket.create_connection((host, port), timeout=CONNECT_TIMEOUT_S):
            pass
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise RexbenchError(
            f"--cluster {address}: cannot reach {host}:{port} ({reason}); is `ray start --head` "
            "running there, and is the port open?"
        ) from None


def _init(ray: ModuleType, address: str) -> None:
    quiet: dict[str, Any] = {
        "logging_level": logging.WARNING,
        "log_to_driver": False,
        "include_dashboard": False,
    }
    if address == LOCAL:
        with _without_default_auth_notice():
            ray.init(address=LOCAL, **quiet)
        return
    if address != AUTO:
        _check_reachable(address)
    quiet.pop(
        "include_dashboard"
    )  # a setting of clusters this driver starts, not of those it joins
    try:
        ray.init(address=address, **quiet)
    except ConnectionError as exc:
        if address == AUTO:
            raise RexbenchError(
                "--cluster auto: no Ray cluster found on this machine; start one with "
                "`ray start --head`, give its HOST:PORT, or try --cluster local"
            ) from None
        hint = "" if os.environ.get("RAY_AUTH_MODE") else f"; {AUTH_HINT}"
        raise RexbenchError(f"--cluster {address}: {first_line(exc)}{hint}") from None
    except (RuntimeError, ValueError) as exc:
        raise RexbenchError(f"--cluster {address}: {first_line(exc)}") from None


class _DefaultAuthNotice(logging.Filter):
    """Ray's notice that it turned token authentication on for a cluster it starts (its default;
    RAY_AUTH_MODE set by the user gives none): for `--cluster local`, news to nobody."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith(AUTH_NOTICE)


@contextlib.contextmanager
def _without_default_auth_notice() -> Iterator[None]:
    """Ray's logger of its token set-up, without that one notice (every other record kept)."""
    log = logging.getLogger(AUTH_LOGGER)
    notice = _DefaultAuthNotice()
    log.addFilter(notice)
    try:
        yield
    finally:
        log.removeFilter(notice)


@contextlib.contextmanager
def connect(address: str) -> Iterator[ModuleType]:
    """Connected to the cluster at `address` for the block; yields the ray module. Disconnects (and
    stops a `local` cluster) afterwards unless the driver was connected before."""
    ray = import_ray()
    if ray.is_initialized():
        yield ray
        return
    _init(ray, address.strip())
    try:
        yield ray
    finally:
        ray.shutdown()


def alive_nodes(ray: ModuleType) -> list[Node]:
    """The alive nodes of the cluster, in Ray's order."""
    out = []
    for info in ray.nodes():
        if not info.get("Alive"):
            continue
        resources = info.get("Resources") or {}
        out.append(
            Node(
                node_id=info["NodeID"],
                address=str(info.get("NodeManagerAddress", "")),
                hostname=str(info.get("NodeManagerHostname", "")),
                labels=dict(info.get("Labels") or {}),
                cpus=float(resources.get("CPU", 0.0)),
                gpus=float(resources.get("GPU", 0.0)),
            )
        )
    return out


def is_alive(ray: ModuleType, node_id: str) -> bool:
    return any(n.node_id == node_id for n in alive_nodes(ray))


def parse_selector(values: Sequence[str] | None) -> dict[str, str]:
    """`--nodes KEY=VALUE` (repeatable, or comma-separated) -> {key: value}."""
    out: dict[str, str] = {}
    for item in split_values(values):
        key, sep, value = item.partition("=")
        if not sep or not key.strip() or not value.strip():
            raise RexbenchError(
                f"--nodes {item}: expected KEY=VALUE, a Ray node label (`ray start --labels KEY=VALUE`)"
            )
        out[key.strip()] = value.strip()
    return out


def select(nodes: Sequence[Node], selector: Mapping[str, str]) -> list[Node]:
    """The nodes that carry every label of `selector` and have CPUs; one line when none does."""
    chosen = [
        n for n in nodes if n.cpus > 0 and all(n.labels.get(k) == v for k, v in selector.items())
    ]
    if chosen:
        return chosen
    if not selector:
        raise RexbenchError("the cluster has no node with CPUs to run on")
    wanted = ",".join(f"{k}={v}" for k, v in selector.items())
    seen = sorted(
        {f"{k}={v}" for n in nodes for k, v in n.labels.items() if not k.startswith("ray.io/")}
    )
    raise RexbenchError(
        f"--nodes {wanted}: no node with CPUs carries these labels (labels in the cluster: "
        f"{', '.join(seen) or 'none'}; set them with `ray start --labels KEY=VALUE`)"
    )
