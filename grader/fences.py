"""Fences on one student's whole sandbox: memory, processes and CPU of all its processes together, and disk.

The per-process limits of grader/sandbox.py (prlimit) do not stop a student who forks six processes, each
under the address-space cap, or writes many files, each under the file-size cap. A fence is a Linux
control group per student (cgroup v1 controllers under /sys/fs/cgroup/<controller>, or cgroup v2 where
the machine is unified), nested in the grader's own group, holding the student's worker and everything
the sandbox starts:
- memory: every process together (v1 memory.limit_in_bytes and memsw, v2 memory.max with no swap); the
  kernel's OOM killer acts inside the group only, on the sandbox's processes first (oom_score_adj 1000);
- processes: pids.max counts every process and thread of the group;
- CPU: a group of its own, so that students share the cores equally whatever their threads (cpu.shares,
  cpu.weight), and with `cpus`, a CFS quota of that many cores (a hard cap: it throttles JAX's threads even
  when cores are idle, so it is off unless asked for);
- disk: the scratch folder is a size-limited tmpfs, whose pages are charged to the group's memory too, so
  a student's memory and files together stay under the memory limit.
Needs root (to mount the tmpfs and to create the groups). Groups and mounts are named by the pid of the
process that made them; `clean_stale` removes those of processes that no longer exist (a grader killed
with SIGKILL leaves them; its workers and sandboxes die with it).
"""

from __future__ import annotations

import functools
import os
import re
import signal
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

CGROUP_ROOT = Path("/sys/fs/cgroup")
GROUP = "resumable-grade"
V1_CONTROLLERS = ("memory", "pids", "cpu")
PERIOD_US = 100_000
# The scratch mount point's run folder: tempfile's grade-<pid>-... (see grader/student.py).
STALE_MOUNT = re.compile(r"/grade-(\d+)-[^/]*/")


@dataclass(frozen=True)
class FenceLimits:
    """Limits on one student's sandbox as a whole."""

    memory_mb: int = 4096
    disk_mb: int = 1024
    processes: int = 512
    cpus: float | None = None


def _own_group(controller: str | None) -> str:
    """The grader's own cgroup path for `controller` (None: the v2 unified hierarchy)."""
    for line in Path("/proc/self/cgroup").read_text().splitlines():
        _, names, path = line.split(":", 2)
        if (controller is None and names == "") or (controller is not None and controller in names.split(",")):
            return path.lstrip("/")
    raise OSError(f"this process is in no {controller or 'cgroup v2'} group")


def _version() -> int | None:
    if (CGROUP_ROOT / "cgroup.controllers").exists():
        return 2
    if all((CGROUP_ROOT / name / "cgroup.procs").exists() for name in ("memory", "pids")):
        return 1
    return None


def _write(path: Path, value: str) -> None:
    with open(path, "w") as handle:
        handle.write(value)


def _bases() -> dict[str, Path]:
    """controller -> the folder holding the fences (v2: one entry, "unified")."""
    if _version() == 2:
        own = CGROUP_ROOT / _own_group(None)
        return {"unified": own / GROUP}
    return {
        name: CGROUP_ROOT / name / _own_group(name) / GROUP
        for name in V1_CONTROLLERS
        if (CGROUP_ROOT / name / "cgroup.procs").exists()
    }


def _make_bases() -> dict[str, Path]:
    bases = _bases()
    for controller, base in bases.items():
        base.mkdir(exist_ok=True)
        if controller == "unified":  # controllers must be enabled from the parent down
            for parent in (base.parent, base):
                wanted = {"memory", "pids", "cpu"} & set((parent / "cgroup.controllers").read_text().split())
                _write(parent / "cgroup.subtree_control", " ".join(f"+{name}" for name in sorted(wanted)))
    return bases


class Fence:
    """One student's cgroup(s) and scratch tmpfs. Use: `Fence.create(...)`, run, `verdict()`, `close()`."""

    _counter = 0
    _lock = threading.Lock()

    def __init__(self, groups: dict[str, Path], scratch: Path, limits: FenceLimits):
        self.groups, self.scratch, self.limits = groups, scratch, limits

    @classmethod
    def create(cls, scratch: Path, limits: FenceLimits) -> Fence:
        with cls._lock:
            cls._counter += 1
            name = f"{os.getpid()}-{cls._counter}"
        groups = {controller: base / name for controller, base in _make_bases().items()}
        fence = cls(groups, scratch, limits)
        try:
            for group in groups.values():
                group.mkdir()
            fence._set_limits()
            scratch.mkdir(parents=True, exist_ok=True)
            size = limits.disk_mb * 1024**2
            inodes = max(1024, limits.disk_mb * 64)  # many small files: inodes are the disk too
            subprocess.run(
                ["mount", "-t", "tmpfs", "-o", f"size={size},nr_inodes={inodes},mode=0755,nosuid,nodev", "tmpfs",
                 str(scratch)],
                check=True, capture_output=True, text=True,
            )  # fmt: skip
        except (OSError, subprocess.CalledProcessError):
            fence.close()
            raise
        return fence

    def _set_limits(self) -> None:
        memory = self.limits.memory_mb * 1024**2
        quota = None if self.limits.cpus is None else max(1000, int(self.limits.cpus * PERIOD_US))
        if "unified" in self.groups:
            group = self.groups["unified"]
            _write(group / "memory.max", str(memory))
            if (group / "memory.swap.max").exists():
                _write(group / "memory.swap.max", "0")
            _write(group / "pids.max", str(self.limits.processes))
            if quota is not None and (group / "cpu.max").exists():
                _write(group / "cpu.max", f"{quota} {PERIOD_US}")
            return
        memory_group = self.groups["memory"]
        _write(memory_group / "memory.limit_in_bytes", str(memory))
        if (memory_group / "memory.memsw.limit_in_bytes").exists():  # no swapping around the limit
            _write(memory_group / "memory.memsw.limit_in_bytes", str(memory))
        _write(self.groups["pids"] / "pids.max", str(self.limits.processes))
        if quota is not None and "cpu" in self.groups:
            _write(self.groups["cpu"] / "cpu.cfs_period_us", str(PERIOD_US))
            _write(self.groups["cpu"] / "cpu.cfs_quota_us", str(quota))

    def procs_files(self) -> list[str]:
        return [str(group / "cgroup.procs") for group in self.groups.values()]

    def join_command(self, argv: list[str]) -> list[str]:
        """`argv` run inside the fence: a shell joins its groups, then becomes `argv` (same pid)."""
        script = 'for f in $0; do echo $$ > "$f" || exit 125; done; exec "$@"'
        return ["/bin/sh", "-c", script, " ".join(self.procs_files()), *argv]

    def _counter_value(self, file: str, key: str) -> int:
        controller = "unified" if "unified" in self.groups else file.split(".")[0]
        path = self.groups[controller] / file
        try:
            for line in path.read_text().splitlines():
                name, _, value = line.partition(" ")
                if name == key:
                    return int(value)
        except OSError:
            pass
        return 0

    def verdict(self) -> list[str]:
        """The limits the student's sandbox reached, in words (empty: none)."""
        found = []
        oom = self._counter_value("memory.events" if "unified" in self.groups else "memory.oom_control", "oom_kill")
        if oom:
            found.append(
                f"the sandbox reached its memory limit (--memory-mb {self.limits.memory_mb}, all its processes and "
                f"files together): the kernel killed {oom} of its processes"
            )
        if self._counter_value("pids.events", "max"):
            found.append(
                f"the sandbox reached its process limit ({self.limits.processes} processes and threads together): "
                "a fork was refused"
            )
        try:
            stats = os.statvfs(self.scratch)
            total = stats.f_blocks * stats.f_frsize
            if stats.f_bavail * stats.f_frsize < max(1024**2, total // 100) or stats.f_favail == 0:
                found.append(f"the sandbox's scratch folder reached its disk limit (--disk-mb {self.limits.disk_mb})")
        except OSError:
            pass
        return found

    def close(self) -> None:
        """Kill whatever is left in the fence, unmount the scratch tmpfs, remove the groups."""
        for _ in range(10):  # until no tmpfs is left at the scratch point (one busy or stacked is tried again)
            _kill_groups(self.groups.values())
            _unmount(self.scratch)
            if not _is_mount(self.scratch):
                break
            time.sleep(0.1)
        _remove_groups(self.groups.values())


def _pids(group: Path) -> list[int]:
    try:
        return [int(line) for line in (group / "cgroup.procs").read_text().split()]
    except OSError:
        return []


def _kill_groups(groups) -> None:
    groups = [group for group in groups if group.exists()]
    for _ in range(200):  # a fork bomb forks while it is killed; pids.max bounds it
        alive = {pid for group in groups for pid in _pids(group)}
        if not alive:
            return
        for group in groups:
            if (group / "cgroup.kill").exists():
                try:
                    _write(group / "cgroup.kill", "1")
                except OSError:
                    pass
        for pid in alive:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        time.sleep(0.02)


def _unmount(point: Path) -> None:
    if _is_mount(point):
        completed = subprocess.run(["umount", str(point)], capture_output=True, check=False)
        if completed.returncode != 0:
            subprocess.run(["umount", "-l", str(point)], capture_output=True, check=False)


def _is_mount(point: Path) -> bool:
    wanted = str(point)
    return any(line.split()[4] == wanted for line in _mountinfo())


def _mountinfo() -> list[str]:
    try:
        return Path("/proc/self/mountinfo").read_text().splitlines()
    except OSError:
        return []


def _remove_groups(groups) -> None:
    for group in groups:
        for _ in range(100):
            try:
                group.rmdir()
                break
            except FileNotFoundError:
                break
            except OSError:  # EBUSY until the last killed process is reaped
                time.sleep(0.02)


def _alive(pid: int) -> bool:
    return Path(f"/proc/{pid}").exists()


def clean_stale() -> list[str]:
    """Remove the fences and scratch mounts of processes that no longer exist; returns what was removed."""
    removed = []
    if os.geteuid() != 0:
        return removed
    for line in _mountinfo():
        fields = line.split()
        point, kind = fields[4], fields[fields.index("-") + 1]
        match = STALE_MOUNT.search(point)
        if kind == "tmpfs" and match and point.startswith(tempfile.gettempdir()) and not _alive(int(match[1])):
            _unmount(Path(point))
            removed.append(point)
    try:
        bases = _bases()
    except OSError:
        return removed
    stale: dict[str, list[Path]] = {}
    for base in bases.values():
        if base.is_dir():
            for group in base.iterdir():
                if group.is_dir() and group.name.split("-")[0].isdigit() and not _alive(int(group.name.split("-")[0])):
                    stale.setdefault(group.name, []).append(group)
    for name, groups in stale.items():
        _kill_groups(groups)
        _remove_groups(groups)
        removed.append(f"cgroup {name}")
    for folder in Path(tempfile.gettempdir()).glob("grade-*-*"):
        match = re.fullmatch(r"grade-(\d+)-.*", folder.name)
        if match and folder.is_dir() and not _alive(int(match[1])):
            subprocess.run(["rm", "-rf", "--one-file-system", str(folder)], check=False)
            removed.append(str(folder))
    return removed


@functools.lru_cache(maxsize=1)
def availability() -> tuple[bool, str]:
    """(True, "") when fences work here; else (False, why)."""
    if not os.path.exists("/proc/self/cgroup"):
        return False, "this system has no Linux control groups (cgroups)"
    if os.geteuid() != 0:
        return False, "fencing a sandbox needs root (to create control groups and mount its scratch tmpfs)"
    version = _version()
    if version is None:
        return False, "no writable cgroup v1 memory and pids controllers, and no cgroup v2, under /sys/fs/cgroup"
    try:
        bases = _make_bases()
        if version == 1 and not {"memory", "pids"} <= set(bases):
            return False, "cgroup v1 without the memory or pids controller"
        if version == 2:
            enabled = set((bases["unified"] / "cgroup.subtree_control").read_text().split())
            if not {"memory", "pids"} <= enabled:
                return False, f"cgroup v2 without the memory or pids controller for {bases['unified']}"
        with tempfile.TemporaryDirectory(prefix="fence-probe-") as folder:
            fence = Fence.create(Path(folder) / "scratch", FenceLimits(memory_mb=64, disk_mb=1, processes=8))
            fence.close()
    except (OSError, subprocess.CalledProcessError) as error:
        detail = getattr(error, "stderr", None) or error
        return False, f"cannot create a control group and a tmpfs for a sandbox: {str(detail).strip()[:300]}"
    return True, ""
