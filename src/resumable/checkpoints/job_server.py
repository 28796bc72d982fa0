"""A process that imports a job module's libraries once and forks each job of that module from itself.

`python -m resumable.checkpoints.training_job` spends about 1.5 s of CPU importing JAX, Flax, Optax and Orbax
before it trains a step; notebook 07 starts eight such jobs and 09 nine. `resumable.checkpoints.jobs` starts
one server per job module and environment (`python -m resumable.checkpoints.job_server MODULE FD`, with the
jobs' own environment) and asks it for each job: the server forks, and the child runs the module as
`python -m MODULE` would (`runpy`, as `__main__`, with the job's arguments, working directory and stdin,
stdout and stderr). The module itself is executed afresh in each child: the server imports it once, then
forgets it, so that only the libraries it imported stay loaded. The server never starts JAX's backend: a
child starts its own, with the environment a fresh process would have.

The protocol, over the SOCK_SEQPACKET socket `FD` (one message per packet, JSON):
- server: `{"ready": true}` once the module's libraries are imported (or it exits, and the parent starts
  its jobs as plain processes);
- parent: `{"argv": [...], "cwd": "..."}` with three file descriptors (the job's stdin, stdout, stderr);
  server: `{"pid": N}` (the job, in a session of its own) or `{"error": "..."}`;
- server: `{"exited": N, "status": S}` when job N exits (S as `subprocess.Popen.returncode`: -9 after SIGKILL).
When the parent closes its end (the kernel exited or died), the server exits; its jobs watch their own stdin.
"""

from __future__ import annotations

import importlib
import json
import os
import runpy
import select
import signal
import socket
import sys
import warnings

MAX_MESSAGE = 1 << 20


def _send(connection: socket.socket, **message: object) -> None:
    connection.send(json.dumps(message).encode())


def serve(module: str, connection: socket.socket) -> int | None:
    """Import `module`'s libraries, then fork a child per request until the parent goes.

    Returns None in the server (it exits), and the exit status of the job in a child (see `_run_child`).
    """
    importlib.import_module(module)
    del sys.modules[module]  # each child executes it afresh, as `__main__`
    # The only other threads here are NumPy's idle OpenBLAS pool, which registers its own fork handlers.
    warnings.filterwarnings("ignore", message=r".*use of fork\(\) may lead to deadlocks", category=DeprecationWarning)
    wake_read, wake_write = os.pipe()
    os.set_blocking(wake_write, False)
    signal.set_wakeup_fd(wake_write)
    signal.signal(signal.SIGCHLD, lambda signum, frame: None)
    _send(connection, ready=True)
    while True:
        readable, _, _ = select.select([connection, wake_read], [], [])
        if wake_read in readable:
            os.read(wake_read, 4096)
            _report_exits(connection)
        if connection not in readable:
            continue
        try:
            data, fds, _, _ = socket.recv_fds(connection, MAX_MESSAGE, 3)
        except OSError:
            data, fds = b"", []
        if not data:  # the parent closed its end
            return None
        request = json.loads(data)
        sys.stdout.flush()
        sys.stderr.flush()
        try:
            pid = os.fork()
        except OSError as error:
            for fd in fds:
                os.close(fd)
            _send(connection, error=f"fork failed: {error}")
            continue
        if pid == 0:
            signal.set_wakeup_fd(-1)
            signal.signal(signal.SIGCHLD, signal.SIG_DFL)
            for fd in (wake_read, wake_write):
                os.close(fd)
            connection.close()
            return _run_child(module, request, fds)
        for fd in fds:
            os.close(fd)
        _send(connection, pid=pid)


def _report_exits(connection: socket.socket) -> None:
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        _send(connection, exited=pid, status=os.waitstatus_to_exitcode(status))


def _run_child(module: str, request: dict, fds: list[int]) -> int:
    """In the forked child: become `python -m module argv...` in the request's folder, with its three streams."""
    os.setsid()
    for target, fd in zip((0, 1, 2), fds, strict=True):
        os.dup2(fd, target)
    for fd in fds:
        if fd > 2:
            os.close(fd)
    os.chdir(request["cwd"])
    sys.path[0] = request["cwd"]  # what `python -m` puts first
    sys.argv = [module, *request["argv"]]
    try:
        runpy.run_module(module, run_name="__main__", alter_sys=True)
    except SystemExit as exit_request:
        code = exit_request.code
        if code is None or isinstance(code, int):
            return code or 0
        print(code, file=sys.stderr)
        return 1
    return 0


def main(argv: list[str]) -> int:
    module, fd = argv
    connection = socket.socket(fileno=int(fd))
    code = serve(module, connection)
    return 0 if code is None else code


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
