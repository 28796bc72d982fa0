"""A bubblewrap sandbox for one student's kernel: no network, read-only system, one writable folder, limits.

Inside the sandbox the student's code sees: /usr, this Python installation and its venv (read-only), the
folders the venv's .pth files add to sys.path (the helper package `src/`, read-only), a private /tmp
(tmpfs with a size limit), and ONE writable host folder: the student's scratch copy. Nothing else of the
course exists there: not solutions/, not the gradebook, not other submissions, not the rest of the repository.
There is no network (a new, empty network namespace), a new PID namespace (everything in it is killed when
the sandbox's first process dies), and resource limits: address space, processes, file size, CPU time.

Run as root (CI), the sandbox drops to an unprivileged user id of its own (one per parallel slot, so the
process limit counts only that student's processes) with every capability removed.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import sys
import sysconfig
from dataclasses import dataclass
from pathlib import Path

BWRAP = "bwrap"


@dataclass(frozen=True)
class Limits:
    """Resource limits for everything in one sandbox (per process, except `processes`: per user id)."""

    memory_bytes: int = 4 * 1024**3  # address space of each process (JAX reserves about 1.5 GB)
    processes: int = 512  # processes and threads of the sandbox's user id (JAX starts many threads)
    file_bytes: int = 256 * 1024**2  # largest file a process may write
    cpu_seconds: int = 1800  # CPU time of each process (the wall-clock limit is enforced outside)
    open_files: int = 4096
    tmp_bytes: int = 1024**3  # size of the private /tmp


def _read_only_roots() -> list[Path]:
    """The folders Python needs: its installation, the venv, and absolute folders named in .pth files."""
    roots = {Path(sys.base_prefix).resolve(), Path(sys.prefix)}
    site_packages = Path(sysconfig.get_paths()["purelib"])
    for pth in site_packages.glob("*.pth"):
        for line in pth.read_text(errors="replace").splitlines():
            line = line.strip()
            if line.startswith("/") and Path(line).is_dir():
                roots.add(Path(line))
    # /usr is bound whole; anything under it needs no extra bind.
    return sorted(root for root in roots if not str(root).startswith("/usr/"))


def _dirs_for(path: Path, made: set[Path]) -> list[str]:
    """bwrap creates missing parents with mode 0700; create them 0755 so the sandbox user can pass."""
    args = []
    for parent in reversed(path.parents):
        if parent == Path("/") or parent in made:
            continue
        made.add(parent)
        args += ["--perms", "0755", "--dir", str(parent)]
    return args


HOSTNAME = "sandbox"  # the host name inside the sandbox (its own UTS namespace), listed in its /etc/hosts


def drops_privileges() -> bool:
    return os.geteuid() == 0


def user_id(uid: int) -> int:
    """The user id code in the sandbox runs as: `uid` when run as root, else the caller's own (mapped as is)."""
    return uid if drops_privileges() else os.getuid()


def write_accounts(folder: Path, uid: int, home: Path) -> Path:
    """`folder`/passwd and `folder`/group for the sandbox: root, the sandbox's user (`uid` as `command` gets
    it) and nobody. Returns `folder`, for `command(accounts=...)`; keep it outside the writable folder.

    Without entries for its user and group, code that asks for their names fails: `getpass.getuser()`, and
    JAX's compilation cache, which looks up the owner and group of every cache file before it writes (a
    KeyError, printed as a warning on stderr, which nbgrader scores as a failed test).
    """
    sandbox_uid = user_id(uid)
    sandbox_gid = uid if drops_privileges() else os.getgid()
    users = ["root:x:0:0:root:/root:/usr/sbin/nologin"]
    groups = ["root:x:0:"]
    if sandbox_uid not in (0, 65534):
        users.append(f"student:x:{sandbox_uid}:{sandbox_gid}:student:{home}:/usr/sbin/nologin")
    if sandbox_gid not in (0, 65534):
        groups.append(f"student:x:{sandbox_gid}:")
    users.append("nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin")
    groups.append("nogroup:x:65534:")
    # The sandbox's own host name, resolvable without DNS: gloo (JAX's CPU collectives, notebook 09's
    # processes) resolves the host name to open its loopback sockets, and fails without an entry.
    hosts = ["127.0.0.1 localhost", f"127.0.0.1 {HOSTNAME}", "::1 localhost"]
    folder.mkdir(parents=True, exist_ok=True)
    for name, lines in (("passwd", users), ("group", groups), ("hosts", hosts)):
        (folder / name).write_text("\n".join(lines) + "\n")
        (folder / name).chmod(0o644)
    return folder


def command(
    argv: list[str],
    writable: Path,
    *,
    env: dict[str, str],
    uid: int = 60001,
    limits: Limits = Limits(),
    chdir: Path | None = None,
    accounts: Path | None = None,
) -> list[str]:
    """The command line that runs `argv` in the sandbox with `writable` bound read-write at the same path.

    `accounts` (from `write_accounts`, outside `writable`): its passwd, group and hosts are bound read-only in
    /etc."""
    made: set[Path] = set()
    if drops_privileges():  # root: no user namespace (setpriv then drops to an unmapped, unprivileged uid)
        namespaces = ["--unshare-pid", "--unshare-net", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try"]
    else:
        namespaces = ["--unshare-all"]
    args = [BWRAP, *namespaces, "--hostname", HOSTNAME, "--die-with-parent", "--new-session"]
    args += ["--ro-bind", "/usr", "/usr"]
    for name in ("bin", "sbin", "lib", "lib64", "lib32", "libx32"):
        target = Path("/") / name
        if target.is_symlink():
            args += ["--symlink", os.readlink(target), str(target)]
        elif target.is_dir():
            args += ["--ro-bind", str(target), str(target)]
    args += _dirs_for(Path("/etc/fonts"), made)  # /etc as 0755: bwrap's 0700 would hide all of it from the user
    for etc in ("/etc/fonts", "/etc/ld.so.cache", "/etc/localtime", "/etc/alternatives"):
        if os.path.exists(etc):
            args += ["--ro-bind", etc, etc]
    if accounts is not None:
        args += [
            "--ro-bind",
            str(accounts / "passwd"),
            "/etc/passwd",
            "--ro-bind",
            str(accounts / "group"),
            "/etc/group",
            "--ro-bind",
            str(accounts / "hosts"),
            "/etc/hosts",
        ]
    # The private /tmp first: a repository or venv that lives under /tmp (a CI clone) is bound into it after.
    args += ["--proc", "/proc", "--dev", "/dev"]
    args += ["--size", str(limits.tmp_bytes), "--perms", "1777", "--tmpfs", "/tmp"]
    made.add(Path("/tmp"))
    for root in _read_only_roots():
        args += _dirs_for(root, made) + ["--ro-bind", str(root), str(root)]
    writable = writable.resolve()
    args += _dirs_for(writable, made) + ["--bind", str(writable), str(writable)]
    args += ["--chdir", str(chdir or writable)]
    args += ["--clearenv"]
    for key, value in env.items():
        args += ["--setenv", key, value]
    args += ["--"]
    if drops_privileges():
        args += [
            "setpriv",
            f"--reuid={uid}",
            f"--regid={uid}",
            "--clear-groups",
            "--inh-caps=-all",
            "--bounding-set=-all",
            "--no-new-privs",
        ]
    args += [
        "prlimit",
        f"--as={limits.memory_bytes}",
        f"--nproc={limits.processes}",
        f"--fsize={limits.file_bytes}",
        f"--cpu={limits.cpu_seconds}",
        f"--nofile={limits.open_files}",
        "--core=0",
        "--",
        *argv,
    ]
    return args


def prepare_writable(folder: Path, uid: int) -> None:
    """Give the sandbox's user the scratch folder (and only it)."""
    if drops_privileges():  # os.walk and lchown never follow a link the student may have planted
        for top, dirs, files in os.walk(folder, followlinks=False):
            os.lchown(top, uid, uid)
            for name in dirs + files:
                os.lchown(os.path.join(top, name), uid, uid)


@functools.lru_cache(maxsize=1)
def availability() -> tuple[bool, str]:
    """(True, "") when the sandbox works here; else (False, why)."""
    if not sys.platform.startswith("linux"):
        return False, f"bubblewrap sandboxing needs Linux (this is {sys.platform})"
    if shutil.which(BWRAP) is None:
        return False, "bubblewrap (bwrap) is not installed (Debian/Ubuntu: apt-get install bubblewrap)"
    for tool in ("prlimit", "setpriv") if drops_privileges() else ("prlimit",):
        if shutil.which(tool) is None:
            return False, f"{tool} (util-linux) is not installed"
    import tempfile

    with tempfile.TemporaryDirectory(prefix="sandbox-probe-") as folder:
        os.chmod(folder, 0o755)
        prepare_writable(Path(folder), 60001)
        probe = command(
            [sys.executable, "-c", "import os; open('ok', 'w').write(str(os.getuid()))"],
            Path(folder),
            env={"PATH": "/usr/bin:/bin"},
        )
        try:
            completed = subprocess.run(probe, capture_output=True, text=True, timeout=60, check=False)
        except (OSError, subprocess.TimeoutExpired) as error:
            return False, f"bubblewrap could not start a sandbox: {error}"
        if completed.returncode != 0 or not (Path(folder) / "ok").exists():
            return False, f"bubblewrap could not start a sandbox: {completed.stderr.strip()[-500:]}"
    return True, ""
