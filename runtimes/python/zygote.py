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
    zygote: setns(init's pidfd) into the sandbox's namespaces, fork, back into its own
            ── child, PID 2 inside: waits until the zygote has put it into the sandbox's
               cgroups, reads the rest of init's request itself (the function's variables
               never pass through the zygote), its own session, gives up root exactly as
               sandbox-init's runtime does (rlimits, bounding set, groups, uid/gid,
               no_new_privs, every other fd closed, the seccomp filter), takes the
               function's environment and working directory, then bootstrap.main()
    zygote: reaps the runtime and sends its wait status to that sandbox's init.

A forked child gets its own `random` state (CPython reseeds it at fork) and nothing of the
zygote's descriptors; what it shares with its siblings is what a fork cannot change: the
interpreter's string-hash secret and the address-space layout. That is why a zygote serves
one function only (see ARCHITECTURE.md). Once the server closes the control socket, the
zygote serves what it was already sent and exits when its last runtime has ended.

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

# The namespaces a zygote returns to after each fork (its own, opened once).
_OWN = (("mnt", CLONE_NEWNS), ("net", CLONE_NEWNET), ("ipc", CLONE_NEWIPC), ("uts", CLONE_NEWUTS),
        ("cgroup", CLONE_NEWCGROUP), ("pid", CLONE_NEWPID))

PR_CAPBSET_DROP = 24
PR_SET_DUMPABLE = 4
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
    # Changing ids without an exec leaves a process undumpable (its /proc files root's);
    # an exec'd runtime is dumpable.
    _check(_libc.prctl(PR_SET_DUMPABLE, 1, 0, 0, 0), "prctl DUMPABLE")
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


def _fork_into(init_pidfd, own):
    """Forks a child inside the sandbox whose init `init_pidfd` is: the zygote joins the
    sandbox's namespaces, forks (the child is PID 2 there and stays), and returns to its
    own."""
    _check(_libc.setns(init_pidfd, NAMESPACES), "join the sandbox's namespaces")
    try:
        pid = os.fork()
    except BaseException:
        _return_home(own)
        raise
    if pid != 0:
        _return_home(own)
    return pid


def _return_home(own):
    for _, fd, kind in own:
        if _libc.setns(fd, kind) != 0:
            # A zygote must never serve from inside a sandbox: end (the server starts
            # another; the sandboxes that were waiting on this one start afresh).
            os._exit(EXIT_SETUP_FAILED)


def _child(go, conn, output, bootstrap):
    """The forked runtime (PID 2 inside): waits until the zygote has moved it into the
    sandbox's cgroups, reads the rest of its request (the function's ids, limits, variables
    and seccomp program: they never pass through the zygote), gives up root, then runs as a
    fresh runtime would. Never returns."""
    try:
        signal.set_wakeup_fd(-1)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        if os.read(go, 1) != b"g":
            os._exit(EXIT_SETUP_FAILED)
        os.close(go)
        req = json.loads(conn.recv(1 << 18))
        # Its own session and process group (as sandbox-init's processes have): no signal
        # to a group reaches it from outside, nor one of its own outside the sandbox.
        os.setsid()
        os.umask(0o022)
        os.dup2(output, 1)
        os.dup2(output, 2)
        null = os.open("/dev/null", os.O_RDONLY)
        os.dup2(null, 0)
        _drop_privileges(req)
        os.closerange(3, 1 << 20)
        _install_seccomp(req["seccomp"])
    except BaseException as e:
        try:
            os.write(2, ("sandbox-init: zygote: %s\n" % (e,)).encode("utf-8", "replace"))
        finally:
            os._exit(EXIT_SETUP_FAILED)
    _runtime(req, bootstrap)


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
        if e.code is None or isinstance(e.code, int):
            code = e.code or 0
        else:
            # As the interpreter does: the message on stderr, status 1.
            sys.stderr.write("%s\n" % (e.code,))
    except BaseException:
        import traceback

        traceback.print_exc()
    try:
        import atexit
        import threading

        # What an interpreter does at exit: join non-daemon threads, then atexit.
        threading._shutdown()
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


def _start(conn, cgroups, init_pidfd, output, bootstrap, own, children):
    """One sandbox's runtime: forked into it, moved into its cgroups, then let go."""
    go_read, go_write = os.pipe()
    try:
        pid = _fork_into(init_pidfd, own)
    except BaseException:
        os.close(go_read)
        os.close(go_write)
        raise
    if pid == 0:
        try:
            os.close(go_write)
            _child(go_read, conn, output, bootstrap)
        finally:
            # Never back into the serving loop as a second zygote.
            os._exit(EXIT_SETUP_FAILED)
    os.close(go_read)
    children[pid] = conn
    try:
        for procs in cgroups:
            with open(procs, "w") as f:
                f.write(str(pid))
        os.write(go_write, b"g")
    finally:
        # Without the word the child ends (setup failed), and is reaped as any other.
        os.close(go_write)


def serve(bootstrap):
    """The zygote's loop (bootstrap.py calls it instead of its main() when started as one):
    forks a runtime for every sandbox init that asks and reports each runtime's end, until
    the server has closed the control socket and the last runtime has ended."""
    _warm_up()
    own = [(name, os.open("/proc/self/ns/" + name, os.O_RDONLY | os.O_CLOEXEC), kind) for name, kind in _OWN]
    # Runtimes' ends wake the loop: a no-op handler, so that the wakeup fd is written.
    wake_read, wake_write = socket.socketpair()
    wake_read.setblocking(False)
    wake_write.setblocking(False)
    signal.set_wakeup_fd(wake_write.fileno())
    signal.signal(signal.SIGCHLD, lambda *_: None)
    control = socket.socket(fileno=CONTROL_FD)
    selector = selectors.DefaultSelector()
    selector.register(control, selectors.EVENT_READ)
    selector.register(wake_read, selectors.EVENT_READ)
    children = {}  # runtime pid → its init's connection
    pending = 0  # connections sent to us whose init has not asked yet
    closing = False
    while not (closing and not children and not pending):
        for key, _ in selector.select():
            sock = key.fileobj
            if sock is wake_read:
                try:
                    while wake_read.recv(512):
                        pass
                except OSError:
                    pass
                _reap(children)
                continue
            if sock is control:
                try:
                    msg, fds = _recv(control, 16)
                except OSError:
                    msg, fds = b"", []
                if not msg and not fds:
                    selector.unregister(control)
                    control.close()
                    closing = True
                for fd in fds:
                    selector.register(socket.socket(fileno=fd), selectors.EVENT_READ)
                    pending += 1
                continue
            selector.unregister(sock)
            pending -= 1
            try:
                msg, fds = _recv(sock, 1 << 18)
            except OSError:
                msg, fds = b"", []
            try:
                if msg and len(fds) == 2:
                    _start(sock, json.loads(msg)["cgroups"], fds[0], fds[1], bootstrap, own, children)
                    sock = None
            except Exception as e:
                # That sandbox's init sees the connection close without a status: its start
                # failed, and the server starts another. The zygote serves on.
                sys.stderr.write("nimbus zygote: a request failed: %r\n" % (e,))
            for fd in fds:
                os.close(fd)
            if sock is not None:
                sock.close()
    os._exit(0)


def _reap(children):
    """Sends each ended runtime's wait status to its sandbox's init. Called only when a
    SIGCHLD woke the loop: each waitpid walks every child, so reaping after every request
    cost a burst time growing with the square of its size."""
    while children:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        conn = children.pop(pid, None)
        if conn is not None:
            try:
                conn.send(struct.pack("<i", status))
            except OSError:
                pass
            conn.close()
