"""CPU share by cgroup (issue 9, item 12), on fake cgroup trees in a temp folder.

The kernel is not there to create interface files: a folder the code makes gets only
what the code writes, so the files it wrote are what the tests read back. On a real
v2 mount `cpu.max` only exists in a group whose parent enabled `+cpu`; these tests
check that the parent is enabled first, in order, and that a failure is one warning.
"""

from __future__ import annotations

import logging
import os
import subprocess
from pathlib import Path

import pytest

from isr.runtime.limits import CFS_PERIOD_US, CpuGroups, cpu_share


def v2_mount(tmp_path: Path, controllers: str = "cpuset cpu io memory pids") -> Path:
    mount = tmp_path / "cgroup"
    mount.mkdir()
    (mount / "cgroup.controllers").write_text(controllers + "\n")
    (mount / "cgroup.subtree_control").write_text("memory\n")
    return mount


def warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]


def test_v2_enables_cpu_in_the_parents_before_writing_cpu_max(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    mount = v2_mount(tmp_path)
    groups = CpuGroups((tmp_path / "missing", mount))
    root = mount / f"isr-{os.getpid()}"
    assert groups.root == root and groups.v2
    assert (mount / "cgroup.subtree_control").read_text() == "+cpu"
    assert (root / "cgroup.subtree_control").read_text() == "+cpu"
    assert not (root / "cgroup.procs").exists(), "the server's folder must hold no process (no internal processes)"

    assert groups.place(4242, 1769) == root / "4242" / "cgroup.procs"  # where a worker's processes are found
    groups.place(4343, 512)
    assert (root / "4242" / "cpu.max").read_text() == f"{CFS_PERIOD_US} {CFS_PERIOD_US}"
    assert (root / "4343" / "cpu.max").read_text() == f"{int(512 / 1769 * CFS_PERIOD_US)} {CFS_PERIOD_US}"
    assert (root / "4242" / "cgroup.procs").read_text() == "4242"
    assert not (root / "4242" / "cpu.cfs_quota_us").exists()
    assert warnings(caplog) == []


def test_v2_that_cannot_enable_cpu_warns_once_and_places_nothing(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    mount = v2_mount(tmp_path)
    (mount / "cgroup.subtree_control").unlink()
    (mount / "cgroup.subtree_control").mkdir()  # writing it fails, as EBUSY would on a group with processes
    groups = CpuGroups((mount,))
    assert groups.root is None
    groups.place(4242, 1769)
    assert not (mount / f"isr-{os.getpid()}").exists()
    found = warnings(caplog)
    assert len(found) == 1 and "not enforced" in found[0] and "cpu controller" in found[0], found


def test_v2_without_a_cpu_controller_is_not_used(tmp_path: Path) -> None:
    mount = v2_mount(tmp_path, controllers="memory pids")
    groups = CpuGroups((mount,))
    assert groups.root is None
    assert (mount / "cgroup.subtree_control").read_text() == "memory\n"


def test_a_failing_placement_warns_once(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    mount = v2_mount(tmp_path)
    groups = CpuGroups((mount,))
    assert groups.root is not None
    for pid in (4242, 4343):
        (groups.root / str(pid)).mkdir()
        (groups.root / str(pid) / "cpu.max").mkdir()  # as a real group whose cpu.max the kernel refuses
    assert groups.place(4242, 1769) is None
    groups.place(4343, 1769)
    found = warnings(caplog)
    assert len(found) == 1 and "4242" in found[0], found


def test_v1_writes_quota_and_period(tmp_path: Path) -> None:
    mount = tmp_path / "cpu"
    mount.mkdir()
    (mount / "cpu.cfs_quota_us").write_text("-1\n")
    groups = CpuGroups((mount,))
    assert groups.root is not None and not groups.v2
    groups.place(4242, 3008)
    group = groups.root / "4242"
    assert (group / "cpu.cfs_period_us").read_text() == str(CFS_PERIOD_US)
    assert (group / "cpu.cfs_quota_us").read_text() == str(int(cpu_share(3008) * CFS_PERIOD_US))
    assert (group / "cgroup.procs").read_text() == "4242"
    assert not (mount / "cgroup.subtree_control").exists()


def test_no_cgroup_is_not_a_warning(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    groups = CpuGroups((tmp_path / "none",))
    assert groups.root is None
    assert warnings(caplog) == []


def test_this_machine_places_a_process_where_it_can() -> None:
    """On the real cgroup mount, when writable (root): the process is in its group, with its quota."""
    groups = CpuGroups()
    if groups.root is None:
        pytest.skip("no writable cgroup with a cpu controller on this machine")
    child = subprocess.Popen(["sleep", "30"])
    try:
        groups.place(child.pid, 512)
        group = groups.root / str(child.pid)
        quota = (group / "cpu.max").read_text().split()[0] if groups.v2 else (group / "cpu.cfs_quota_us").read_text().strip()
        assert quota == str(int(cpu_share(512) * CFS_PERIOD_US))
        relative = "/" + str(group.relative_to(groups.root.parent))
        assert any(line.endswith(":" + relative) for line in Path(f"/proc/{child.pid}/cgroup").read_text().splitlines())
    finally:
        child.kill()
        child.wait()
        groups.remove(child.pid)
        groups.close()
    assert not groups.root.exists()
