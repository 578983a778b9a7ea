"""Nimbus Python zygote: one interpreter, initialised once, forked into many sandboxes.

Why this file exists: starting a Python runtime costs an interpreter start, the compile of
bootstrap.py and the imports of json, logging and socket (about 30 ms of CPU); in a burst of
a thousand environments that is most of the machine. Nimbus starts one zygote per function
that is bursting: `python -u /var/runtime/bootstrap.py` with NIMBUS_ZYGOTE=1, as root on
the host in a mount namespace of its own where the runtime directory is at /var/runtime,
with a fixed environment and nothing of any function's. bootstrap.py then calls serve()
instead of its main(), and the interpreter, prepared as far as it can be before it knows
its function, forks a copy into each new sandbox of that function:

    server ──(control socket, fd 3: one connection per sandbox)──► zygote
    sandbox init (PID 1 inside) ──(its connection: request + its pidfd and output fd)──► zygote
    zygote ── fork ──► waiter: joins the sandbox's cgroups and namespaces, gives up root
                       exactly as sandbox-init does (rlimits, bounding set, groups, uid/gid,
                       no_new_privs, every other fd closed, the seccomp filter), then
                       ── fork ──► runtime (PID 2 inside): the function's environment and
                                   working directory, then bootstrap.main()
                       waits for the runtime and sends its wait status to init.

A forked child gets its own `random` state (CPython reseeds it at fork) and nothing of the
zygote's descriptors; what it shares with its siblings is what a fork cannot change: the
interpreter's string-hash secret and the address-space layout. That is why a zygote serves
one function only (see ARCHITECTURE.md, "Python zygotes").

The zygote reads nothing from functions: its only peers are the server and sandbox init
processes, which run as root. Standard library only.
"""

import ctypes
import json
import os
import resource
import selectors
import signal
import socket
import struct
import sys

CONTROL_FD = 3
# Exit code of sandbox-init when the sandbox could not be built (jail::EXIT_SETUP_FAILED).
EXIT_SETUP_FAILED = 126

CLONE_NEWNS = 0x00020000
CLONE_NEWCGROUP = 0x02000000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000
NAMESPACES = CLONE_NEWNS | CLONE_NEWCGROUP | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWPID | CLONE_NEWNET

PR_CAPBSET_DROP = 24
PR_SET_NO_NEW_PRIVS = 38
PR_SET_SECCOMP = 22
SECCOMP_MODE_FILTER = 2
_LINUX_CAPABILITY_VERSION_3 = 0x20080522

_libc = ctypes.CDLL(None, use_errno=True)


def _check(rc, what):
    if rc != 0:
        err = ctypes.get_errno()
        raise OSError(err, "%s: %s" % (what, os.strerror(err)))


class _SockFilter(ctypes.Structure):
    _fields_ = [("code", ctypes.c_uint16), ("jt", ctypes.c_uint8), ("jf", ctypes.c_uint8), ("k", ctypes.c_uint32)]


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.POINTER(_SockFilter))]


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32), ("inheritable", ctypes.c_uint32)]


def _warm_up():
    """Imports what main() and the first invocation would import late."""
    import encodings.idna  # noqa: F401 (socket.connect to a host name)
    import importlib.util  # noqa: F401


def _drop_privileges(req):
    """What sandbox-init's runtime does before exec (jail/init.rs, drop_privileges)."""
    if req.get("nproc") is not None:
        resource.setrlimit(resource.RLIMIT_NPROC, (req["nproc"], req["nproc"]))
    resource.setrlimit(resource.RLIMIT_NOFILE, (req["nofile"], req["nofile"]))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    for cap in range(64):
        if _libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0:
            if ctypes.get_errno() == 22:  # EINVAL: past the last capability this kernel knows
                break
            _check(-1, "drop bounding capabilities")
    os.setgroups([])
    os.setresgid(req["gid"], req["gid"], req["gid"])
    os.setresuid(req["uid"], req["uid"], req["uid"])
    header = _CapHeader(_LINUX_CAPABILITY_VERSION_3, 0)
    data = (_CapData * 2)()
    _check(_libc.capset(ctypes.byref(header), data), "clear capabilities")
    _check(_libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "prctl NO_NEW_PRIVS")


def _install_seccomp(programs):
    for hexed in programs:
        raw = bytes.fromhex(hexed)
        count = len(raw) // 8
        filters = (_SockFilter * count).from_buffer_copy(raw)
        prog = _SockFprog(count, filters)
        _check(_libc.prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.byref(prog), 0, 0), "install seccomp filter")


def _waiter(conn, req, init_pidfd, output, bootstrap):
    """The zygote's child: into the sandbox, down to the function's user, then the runtime's
    parent. Never returns."""
    status = EXIT_SETUP_FAILED << 8
    try:
        # Not tied to the zygote's life: a zygote let go when idle leaves its sandboxes
        # running. When the server dies, sandbox-init's processes die with it, and the
        # kernel kills the runtime with its PID namespace; then this one ends too.
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        pid = str(os.getpid())
        for procs in req["cgroups"]:
            with open(procs, "w") as f:
                f.write(pid)
        _check(_libc.setns(init_pidfd, NAMESPACES), "join the sandbox's namespaces")
        os.close(init_pidfd)
        os.dup2(output, 1)
        os.dup2(output, 2)
        os.close(output)
        null = os.open("/dev/null", os.O_RDONLY)
        os.dup2(null, 0)
        os.close(null)
        _drop_privileges(req)
        os.closerange(3, conn)
        os.closerange(conn + 1, 1 << 20)
        _install_seccomp(req["seccomp"])
        child = os.fork()
    except BaseException as e:
        try:
            os.write(2, ("sandbox-init: zygote: %s\n" % (e,)).encode("utf-8", "replace"))
            os.write(conn, struct.pack("<i", status))
        finally:
            os._exit(EXIT_SETUP_FAILED)
    if child == 0:
        os.close(conn)
        _runtime(req, bootstrap)
    try:
        _, status = os.waitpid(child, 0)
        os.write(conn, struct.pack("<i", status))
    finally:
        os._exit(0)


def _runtime(req, bootstrap):
    """PID 2 inside: the function's runtime, as if `python -u bootstrap.py` had started
    (which is how the zygote itself was started, in a mount namespace of its own with the
    runtime directory at /var/runtime)."""
    code = 1
    try:
        # A fresh runtime has not imported this module: the function may have its own.
        sys.modules.pop(__name__, None)
        bootstrap._adopt(req["env"], req["cwd"])
        bootstrap.main()
        code = 0
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    except BaseException:
        import traceback

        traceback.print_exc()
    try:
        import atexit

        atexit._run_exitfuncs()
        sys.stdout.flush()
        sys.stderr.flush()
    finally:
        os._exit(code)


def _recv(sock, size):
    """One message and the fds it carries; (b"", []) at end of file."""
    fds = []
    msg, ancdata, _, _ = sock.recvmsg(size, socket.CMSG_SPACE(8 * 4))
    for level, kind, data in ancdata:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            fds.extend(struct.unpack("%di" % (len(data) // 4), data[: len(data) - len(data) % 4]))
    return msg, fds


def serve(bootstrap):
    """The zygote's loop (bootstrap.py calls it instead of its main() when started as one):
    forks a runtime for every sandbox init that asks, until the server closes the control
    socket."""
    _warm_up()
    # Waiters are reaped by the kernel; each one reports its runtime's end itself.
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)
    control = socket.socket(fileno=CONTROL_FD)
    selector = selectors.DefaultSelector()
    selector.register(control, selectors.EVENT_READ)
    while True:
        for key, _ in selector.select():
            sock = key.fileobj
            if sock is control:
                msg, fds = _recv(control, 16)
                if not msg and not fds:
                    os._exit(0)
                for fd in fds:
                    selector.register(socket.socket(fileno=fd), selectors.EVENT_READ)
                continue
            selector.unregister(sock)
            try:
                msg, fds = _recv(sock, 1 << 18)
            except OSError:
                msg, fds = b"", []
            try:
                if msg and len(fds) == 2:
                    req = json.loads(msg)
                    if os.fork() == 0:
                        try:
                            _waiter(sock.detach(), req, fds[0], fds[1], bootstrap)
                        finally:
                            # Never back into this loop as a second zygote.
                            os._exit(EXIT_SETUP_FAILED)
            except Exception as e:
                # That sandbox's init sees the connection close without a status: its start
                # failed, and the server starts another. The zygote serves on.
                sys.stderr.write("nimbus zygote: a request failed: %r\n" % (e,))
            for fd in fds:
                os.close(fd)
            sock.close()

