"""Instances: N copies of a workload side by side, as processes, containers or VMs.

This is the one interface the consolidation and cap experiments drive (see
docs/consolidate.md, "Instance backends"). A backend:

* is a context manager (``with make_backend(kind, options) as b:``); leaving it releases
  everything it ever created (cgroups, namespaces, guests, scratch directories), also on
  errors, Ctrl-C and SIGTERM;
* ``check(workload, cpus)`` refuses impossible requests up front (one clear error line);
* ``run(requests, timeout=...)`` runs one *condition*: exactly ``len(requests)`` instances
  exist while it runs; each request either runs a workload (loaded) or idles; it starts the
  loaded ones together, waits for all of them, and returns one ``InstanceOutcome`` per
  request with the workload's own seconds, its parsed metrics and CPU accounting;
* ``describe()`` says what it is (for the result document).

To add a kind, write a module with a class implementing ``InstanceBackend`` and add one line
to ``BACKENDS`` (``"kind": "module:Class"``); the CLI's ``--kind`` choices come from there.
"""

from __future__ import annotations

import importlib
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, ClassVar

from virtbench.cgroups import CpuStats
from virtbench.errors import EnvironmentUnsupported, UsageError, VirtbenchError


class InstanceFailed(VirtbenchError):
    """A workload instance exited with an error or produced no result."""

    exit_code = 4


@dataclass(frozen=True)
class WorkloadOutput:
    seconds: float
    """The workload's own timing of its fixed work (or of its run, for timed workloads)."""
    metrics: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class WorkloadCommand:
    """How to run one instance of a workload: a compiled program and its arguments.

    ``program`` is a name understood by ``virtbench.experiments.programs.build`` (host
    backends build it with the host's cc; the VM backend builds it statically for the guest),
    or an absolute path of an executable that exists where the instance runs.
    An argument ``{dir}`` is replaced by the instance's own scratch directory.
    """

    name: str
    program: str
    args: tuple[str, ...]
    parse: Callable[[str], WorkloadOutput]
    needs_dir: bool = False


@dataclass(frozen=True)
class InstanceRequest:
    index: int
    workload: WorkloadCommand | None
    """``None``: the instance exists but idles (see docs/consolidate.md, "Idle")."""
    cpus: float | None = None
    """CPU quota of the instance in CPUs (CFS bandwidth), ``None`` for no cap."""
    period_us: int = 100_000


@dataclass
class InstanceOutcome:
    index: int
    loaded: bool
    seconds: float | None
    """The workload's own seconds (``None`` for idle instances)."""
    wall_s: float
    """Seconds from the start signal until the instance ended, seen by the tool."""
    metrics: dict[str, float] = field(default_factory=dict)
    cpu: CpuStats | None = None
    accounting: str = ""
    """Where ``cpu`` comes from: ``rusage``, ``cgroup v1``, ``cgroup v2``, ``qemu cgroup``..."""

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "index": self.index,
            "loaded": self.loaded,
            "seconds": self.seconds,
            "wall_s": round(self.wall_s, 6),
            "accounting": self.accounting,
        }
        if self.cpu is not None:
            d.update(
                cpu_usage_s=round(self.cpu.usage_s, 6),
                cpu_user_s=round(self.cpu.user_s, 6),
                cpu_system_s=round(self.cpu.system_s, 6),
                nr_periods=self.cpu.nr_periods,
                nr_throttled=self.cpu.nr_throttled,
                throttled_s=None if self.cpu.throttled_s is None else round(
                    self.cpu.throttled_s, 6),
            )
        if self.metrics:
            d["metrics"] = self.metrics
        return d


@dataclass(frozen=True)
class BackendOptions:
    cgroup: str = "auto"
    """cgroup version for container/vm kinds: ``auto``, ``v1`` or ``v2``."""
    net: bool = False
    """Containers: also a network namespace (loopback only)."""
    workdir: str | None = None
    """Where instances' scratch directories go (default: the temp directory)."""
    extra: dict[str, Any] = field(default_factory=dict)
    """Kind-specific settings (vm: vcpus, memory, kernel, pinning...)."""


class InstanceBackend(ABC):
    kind: ClassVar[str]

    def __init__(self, options: BackendOptions) -> None:
        self.options = options

    def check(self, workload: WorkloadCommand | None, cpus: float | None) -> None:
        """Raise ``UsageError`` / ``EnvironmentUnsupported`` if this cannot work."""
        return None

    @abstractmethod
    def run(self, requests: Sequence[InstanceRequest], *, timeout: float) -> list[
            InstanceOutcome]: ...

    @abstractmethod
    def close(self) -> None:
        """Release everything; safe to call twice."""

    def describe(self) -> dict[str, Any]:
        return {"kind": self.kind}

    def __enter__(self) -> InstanceBackend:
        return self

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()


# The one registry of instance kinds: kind -> "module:Class".
BACKENDS: dict[str, str] = {
    "process": "virtbench.experiments.instances.local:ProcessBackend",
    "container": "virtbench.experiments.instances.local:ContainerBackend",
    "vm": "virtbench.experiments.instances.vm:VMBackend",
}


def kinds() -> list[str]:
    return list(BACKENDS)


def make_backend(kind: str, options: BackendOptions | None = None) -> InstanceBackend:
    try:
        target = BACKENDS[kind]
    except KeyError:
        raise UsageError(f"unknown instance kind {kind!r} (choose from {', '.join(BACKENDS)})") \
            from None
    module_name, _, class_name = target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise EnvironmentUnsupported(f"instance kind {kind!r} is not available: {exc}") from None
    cls = getattr(module, class_name)
    backend: InstanceBackend = cls(options or BackendOptions())
    return backend
