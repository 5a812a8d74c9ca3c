"""Resource limits of worker processes: memory by rlimit, CPU share by cgroup.

CPU follows memory as on AWS Lambda and Vercel: a worker gets memory / 1769 MB of
a CPU (1,769 MB = 1 vCPU), capped at the machine's cores. It is enforced with a
cgroup (v1 `cpu` or v2) per worker where the machine lets us create one (root,
writable cgroup fs); elsewhere workers share the CPUs unthrottled.
"""

from __future__ import annotations

import ctypes
import errno
import logging
import os
import resource
import signal
from pathlib import Path

log = logging.getLogger("isr")

CGROUP_MOUNTS = (Path("/sys/fs/cgroup/cpu"), Path("/sys/fs/cgroup"))  # v1's cpu hierarchy, v2's unified one
MB = 2**20
MB_PER_VCPU = 1769
CFS_PERIOD_US = 100_000
_PR_SET_PDEATHSIG = 1


def die_with_parent() -> None:
    """Be SIGKILLed when our parent dies, even in the middle of a `while True:` (Linux)."""
    try:
        ctypes.CDLL(None).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):
        log.info("cannot tie this process's life to its parent's on this platform")


def limit_memory(memory_mb: int) -> None:
    """Cap this process's data (heap and anonymous mappings) at what it uses now plus memory_mb.

    RLIMIT_DATA, unlike RLIMIT_AS, leaves thread stacks and mapped files out, so the
    limit is close to what the function itself allocates. Going over raises MemoryError.
    """
    used = _status_kb("VmData") * 1024
    resource.setrlimit(resource.RLIMIT_DATA, (used + memory_mb * MB, resource.RLIM_INFINITY))


def peak_memory_mb(pid: int | None = None) -> float:
    """Peak resident memory of this process, or of another one still alive (0 if gone)."""
    if pid is None:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return _status_kb("VmHWM", f"/proc/{pid}/status") / 1024


def _status_kb(field: str, status: str = "/proc/self/status") -> int:
    try:
        text = Path(status).read_text()
    except OSError:
        return 0
    for line in text.splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def cpu_share(memory_mb: int) -> float:
    return min(memory_mb / MB_PER_VCPU, float(os.cpu_count() or 1))


class CpuGroups:
    """One cgroup per worker process under a folder of this server's; best effort.

    cgroup v2 applies `cpu.max` only where the parent's `cgroup.subtree_control`
    enables the cpu controller, and a group with processes of its own may not enable
    it for its children ("no internal processes"). So the server's folder is made a
    child of the mount, holds no process itself (each worker has a group below it),
    and `+cpu` is written to the mount's and to its own `subtree_control` before any
    `cpu.max`. Where that cannot be done, one warning says the CPU share is not enforced.
    """

    def __init__(self, mounts: tuple[Path, ...] = CGROUP_MOUNTS) -> None:
        self.root: Path | None = None
        self.v2 = False
        self._warned = False
        found = _writable_mount(mounts)
        if found is None:
            log.info("CPU share per function is not enforced: no writable cgroup on this machine")
            return
        mount, self.v2 = found
        root = mount / f"isr-{os.getpid()}"
        try:
            if self.v2:
                _enable_cpu(mount)
            root.mkdir(exist_ok=True)
            if self.v2:
                _enable_cpu(root)
        except OSError as exc:
            _rmdir(root)
            busy = " (cgroup v2 allows it only in a group without processes of its own)" if exc.errno == errno.EBUSY else ""
            self._warn(f"CPU share per function is not enforced: cannot enable the cpu controller under {mount}: {exc}{busy}")
            return
        self.root = root

    def place(self, pid: int, memory_mb: int) -> Path | None:
        """Put a worker in a group of its own; that group's list of processes, None if it has none."""
        if self.root is None:
            return None
        group = self.root / str(pid)
        quota = int(cpu_share(memory_mb) * CFS_PERIOD_US)
        try:
            group.mkdir(exist_ok=True)
            if self.v2:
                (group / "cpu.max").write_text(f"{quota} {CFS_PERIOD_US}")
            else:
                (group / "cpu.cfs_period_us").write_text(str(CFS_PERIOD_US))
                (group / "cpu.cfs_quota_us").write_text(str(quota))
            (group / "cgroup.procs").write_text(str(pid))
        except OSError as exc:
            self._warn(f"CPU share per function is not enforced for worker {pid} (and maybe others): {exc}")
            return None
        return group / "cgroup.procs"

    def remove(self, pid: int) -> None:
        if self.root is not None:
            _rmdir(self.root / str(pid))

    def close(self) -> None:
        if self.root is not None:
            for group in self.root.glob("*"):
                if group.is_dir():
                    _rmdir(group)
            _rmdir(self.root)

    def _warn(self, message: str) -> None:
        """Once per server: the same cause would repeat for every worker."""
        if not self._warned:
            self._warned = True
            log.warning(message)


def _writable_mount(mounts: tuple[Path, ...]) -> tuple[Path, bool] | None:
    """The first writable cgroup mount with a cpu controller, and whether it is v2."""
    for candidate in mounts:
        controllers = candidate / "cgroup.controllers"
        is_v2 = controllers.exists() and "cpu" in controllers.read_text().split()
        is_v1 = (candidate / "cpu.cfs_quota_us").exists()
        if (is_v1 or is_v2) and os.access(candidate, os.W_OK):
            _remove_stale(candidate)
            return candidate, is_v2
    return None


def _enable_cpu(folder: Path) -> None:
    """Let the groups below `folder` use the cpu controller (cgroup v2)."""
    (folder / "cgroup.subtree_control").write_text("+cpu")


def _remove_stale(root: Path) -> None:
    """Folders of servers that died without cleaning up (kill -9)."""
    for folder in root.glob("isr-*"):
        pid = folder.name.removeprefix("isr-")
        if pid.isdigit() and not Path(f"/proc/{pid}").exists():
            for group in folder.glob("*"):
                _rmdir(group)
            _rmdir(folder)


def _rmdir(path: Path) -> None:
    try:
        path.rmdir()  # cgroup folders are removed with rmdir, never rmtree
    except OSError:
        pass


