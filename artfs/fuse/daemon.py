"""The mount's lifecycle: mount, serve, unmount.

``mount`` checks the mount point, then either serves in front (``--foreground``: logs to
stderr, tells systemd READY=1 once the mount is live) or forks a daemon and returns only
when the daemon reports the mount live, or prints the daemon's error. That is what
``mount.fuse3`` (fstab) needs. The daemon logs to a file under the state directory.

Order inside the serving process: open the store, ``pyfuse3.init`` (the mount is live from
here), report ready, then run trio. SIGTERM and SIGINT unmount cleanly, SIGHUP forgets the
cached listings, SIGUSR1 dumps every thread's stack to the log. A crash leaves the mount in
place (accesses fail with ENOTCONN rather than showing an empty directory) until
``artfs umount`` or ``fusermount3 -u`` clears it.

Once unmounted, however that happened, the daemon commits every staging area with changes
and writes the reports to the mount's record (``control``), which ``artfs umount`` waits for
and prints; then it exits.
"""

from __future__ import annotations

import contextlib
import errno
import faulthandler
import json
import logging
import logging.handlers
import os
import shutil
import signal
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

import pyfuse3
import trio

from ..client.client import Client
from ..core.config import Config, load_config
from ..core.errors import ArtfsError
from ..core.sizes import format_size
from .areas import StagingNamespace, staging_root, store_key
from .background import CacheBound, UsageRecorder
from .commit import Committer, commit_all
from .control import (
    PID_XATTR,
    STATE_XATTR,
    mount_name,
    read_record,
    record_path,
    root_xattr,
    write_record,
)
from .metrics import MetricsServer, MountCollector
from .reader import MAX_OPEN_CHUNKS, ChunkFiles, Reader
from .stats import MountStats
from .system import FSTYPE, find_mount, raise_fd_limit, running, sd_notify, set_readahead
from .writable import WritableOperations

log = logging.getLogger("artfs.mount")
DEFAULT_TTL = 5.0
KERNEL_READAHEAD_KIB = 1024
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


@dataclass
class MountOptions:
    mountpoint: str
    source: str = "artfs"
    entity: str | None = None
    metadata_ttl: float = DEFAULT_TTL
    cache_size: int | None = None
    open_chunks: int = MAX_OPEN_CHUNKS
    run: str | None = None
    foreground: bool = False
    fuse_options: list[str] = field(default_factory=list)
    log_file: str | None = None
    debug: bool = False
    metrics_host: str = "127.0.0.1"
    metrics_port: int | None = None  # serve Prometheus metrics there


def log_path(config: Config, mountpoint: str) -> Path:
    """``$ARTFS_STATE_DIR/logs/mount-<mount point, '/' as '-'>.log``."""
    return config.state_dir / "logs" / f"mount-{mount_name(mountpoint)}.log"


def check_mountpoint(path: str) -> str:
    mnt = os.path.abspath(path)
    try:
        st = os.stat(mnt)
    except FileNotFoundError:
        raise ArtfsError(f"mount point {mnt} does not exist") from None
    except OSError as exc:
        if exc.errno == errno.ENOTCONN:
            raise ArtfsError(
                f"{mnt} is a dead mount (its daemon died): run 'artfs umount {mnt}' first"
            ) from None
        raise ArtfsError(f"mount point {mnt}: {exc.strerror}") from None
    if not stat.S_ISDIR(st.st_mode):
        raise ArtfsError(f"mount point {mnt} is not a directory")
    entry = find_mount(mnt)
    if entry is not None and entry.fstype == FSTYPE:
        raise ArtfsError(f"{mnt} is already an artfs mount")
    return mnt


def mount(opts: MountOptions) -> None:
    """Mount; return once the mount is live (daemon) or after it ends (foreground)."""
    opts.mountpoint = check_mountpoint(opts.mountpoint)
    if opts.log_file:
        opts.log_file = os.path.abspath(opts.log_file)  # the daemon runs in /
    config = load_config(entity=opts.entity)
    if opts.foreground:
        _setup_logging(opts.log_file, opts.debug)
        serve(opts, config, lambda: sd_notify(f"READY=1\nSTATUS=serving {opts.mountpoint}"))
        return
    logfile = opts.log_file or str(log_path(config, opts.mountpoint))
    _daemonize(opts, config, logfile)


def _setup_logging(logfile: str | None, debug: bool) -> None:
    handler: logging.Handler
    stream: TextIO
    if logfile:
        Path(logfile).parent.mkdir(parents=True, exist_ok=True)
        handler = logging.handlers.WatchedFileHandler(logfile)  # logrotate-friendly
        stream = open(logfile, "a")  # noqa: SIM115 - kept open for stack dumps
    else:
        handler = logging.StreamHandler(sys.stderr)
        stream = sys.stderr
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.DEBUG if debug else logging.INFO)
    faulthandler.register(signal.SIGUSR1, file=stream, all_threads=True)


class _Pipe:
    """The daemon's line back to the process that started it (closed once used)."""

    def __init__(self, fd: int):
        self.fd: int | None = fd

    def send(self, message: str) -> None:
        if self.fd is None:
            return
        with contextlib.suppress(OSError):
            os.write(self.fd, message.encode())
        os.close(self.fd)
        self.fd = None


def _daemonize(opts: MountOptions, config: Config, logfile: str) -> None:
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid:
        os.close(write_end)
        chunks = []
        while chunk := os.read(read_end, 4096):
            chunks.append(chunk)
        os.close(read_end)
        message = b"".join(chunks).decode(errors="replace").strip()
        if message == "ok":
            return
        raise ArtfsError(message or f"the mount daemon exited; see {logfile}")
    os.close(read_end)
    pipe = _Pipe(write_end)
    code = 1
    try:
        os.setsid()
        os.chdir("/")
        os.environ.pop("NOTIFY_SOCKET", None)  # only a foreground mount talks to systemd
        _setup_logging(logfile, opts.debug)

        def ready() -> None:
            pipe.send("ok")
            null = os.open(os.devnull, os.O_RDWR)
            for fd in (0, 1, 2):
                os.dup2(null, fd)
            os.close(null)

        serve(opts, config, ready)
        code = 0
    except ArtfsError as exc:
        log.error("%s", exc)
        pipe.send(str(exc))
    except BaseException as exc:
        log.exception("the mount daemon failed")
        pipe.send(f"the mount daemon failed: {exc}; see {logfile}")
    finally:
        logging.shutdown()
        os._exit(code)


def serve(opts: MountOptions, config: Config, ready: Callable[[], object]) -> None:
    """Mount and serve until unmounted or told to stop."""
    stopping = threading.Event()

    def early_stop(signum: int, frame: object) -> None:  # until trio takes the signals over
        stopping.set()

    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, early_stop)
    raise_fd_limit()
    client = Client(config)
    try:
        entity = opts.entity or client.entity
        client.backend.list_projects(entity)  # fail now, in one line, if the store is not there
        stats = MountStats(opts.mountpoint)
        staging = staging_root(config, entity)
        namespace = StagingNamespace(client.backend, entity, opts.metadata_ttl, staging)
        files = ChunkFiles(client.cache, client.backend, stats, opts.open_chunks)
        usage = UsageRecorder(client.backend, opts.run) if opts.run else None
        record = record_path(config, opts.mountpoint)
        ops = WritableOperations(
            namespace,
            Reader(files, stats, client.references),
            stats,
            Committer(client),
            usage,
            str(record),
        )
        bound = CacheBound(client.cache, opts.cache_size, files) if opts.cache_size else None
        exporter = _metrics(opts) if opts.metrics_port is not None else None
        collector = exporter.collector if exporter else None
        fuse_options = {f"fsname={opts.source}", f"subtype={FSTYPE.split('.')[1]}"}
        fuse_options.update(opts.fuse_options)
        try:
            pyfuse3.init(ops, opts.mountpoint, fuse_options)
        except RuntimeError as exc:
            raise ArtfsError(f"cannot mount at {opts.mountpoint}: {exc}") from None
        log.info(
            "mounted %s at %s (entity %s, metadata TTL %ss, cache %s%s, pid %d)",
            opts.source,
            opts.mountpoint,
            entity,
            opts.metadata_ttl,
            client.cache.root,
            f" bounded to {format_size(opts.cache_size)}" if opts.cache_size else "",
            os.getpid(),
        )
        about = {
            "mountpoint": opts.mountpoint,
            "pid": os.getpid(),
            "entity": entity,
            "store": store_key(config),
            "staging": str(staging),
        }
        write_record(record, {**about, "state": "serving"})
        ready()
        clean = False
        try:
            trio.run(_main, ops, files, usage, bound, collector, stopping, opts.mountpoint)
            clean = True
        except Exception as exc:
            log.exception("the mount daemon failed")
            raise ArtfsError(
                f"the mount daemon failed ({exc}); {opts.mountpoint} stays mounted but dead "
                f"until 'artfs umount {opts.mountpoint}'"
            ) from None
        finally:
            # after a crash the mount stays (ENOTCONN) rather than look like an empty dir
            pyfuse3.close(unmount=clean)
            files.close()
            if exporter:
                exporter.stop()
        log.info("unmounted %s", opts.mountpoint)
        _commit_on_unmount(ops, record, about)
    finally:
        client.close()


def _commit_on_unmount(ops: WritableOperations, record: Path, about: dict[str, object]) -> None:
    """Commit every staging area with changes; the reports go to the log and the record."""
    write_record(record, {**about, "state": "committing"})
    try:
        reports = [r.to_json() for r in commit_all(ops.commits.committer, ops.areas)]
    except Exception as exc:  # a bug: the staged data stays on disk for the next mount
        log.exception("committing the staging areas failed")
        reports = [{"ok": False, "text": f"committing the staging areas failed: {exc}"}]
    finally:
        ops.areas.close()
    write_record(record, {**about, "state": "done", "commits": reports})


def _metrics(opts: MountOptions) -> MetricsServer:
    """Listen for Prometheus scrapes (before the mount is reported live, so a port in use
    fails ``artfs mount`` in one line)."""
    assert opts.metrics_port is not None
    try:
        exporter = MetricsServer(opts.metrics_host, opts.metrics_port)
    except OSError as exc:
        where = f"{opts.metrics_host}:{opts.metrics_port}"
        raise ArtfsError(f"cannot serve metrics on {where}: {exc.strerror}") from None
    log.info("metrics at http://%s:%d/metrics", opts.metrics_host, opts.metrics_port)
    return exporter


async def _main(
    ops: WritableOperations,
    files: ChunkFiles,
    usage: UsageRecorder | None,
    bound: CacheBound | None,
    collector: MountCollector | None,
    stopping: threading.Event,
    mnt: str,
) -> None:
    ops.initialized = trio.Event()
    if collector is not None:
        evicted = (lambda: bound.evicted_chunks) if bound else (lambda: 0)
        collector.serving(lambda: {**ops.stats_snapshot(), "chunks_evicted": evicted()})
    async with trio.open_nursery() as nursery:
        files.nursery = nursery
        if usage is not None:
            usage.nursery = nursery
        if bound is not None:
            nursery.start_soon(bound.run)
        nursery.start_soon(_signals, ops, stopping)
        nursery.start_soon(_raise_readahead, ops.initialized, mnt)
        nursery.start_soon(_commit_pending, ops)
        await pyfuse3.main()
        nursery.cancel_scope.cancel()


async def _raise_readahead(initialized: trio.Event, mnt: str) -> None:
    """Once INIT has set the mount's readahead from the kernel's default (128 KiB), raise it
    so sequential readers send 1 MiB requests (root only; otherwise nothing changes)."""
    await initialized.wait()
    await trio.sleep(0)
    entry = find_mount(mnt)
    if entry is not None and set_readahead(entry, KERNEL_READAHEAD_KIB):
        log.debug("kernel readahead of %s set to %d KiB", mnt, KERNEL_READAHEAD_KIB)


async def _commit_pending(ops: WritableOperations) -> None:
    try:
        await ops.commits.pending()
    except Exception as exc:  # logged; the areas stay pending for the unmount to commit
        log.error("committing pending staging areas: %s", exc)


async def _signals(ops: WritableOperations, stopping: threading.Event) -> None:
    with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT, signal.SIGHUP) as received:
        if stopping.is_set():
            pyfuse3.terminate()
            return
        async for signum in received:
            if signum == signal.SIGHUP:
                ops.ns.refresh()
                log.info("SIGHUP: cached listings dropped")
                continue
            log.info("%s: unmounting", signal.Signals(signum).name)
            sd_notify("STOPPING=1")
            pyfuse3.terminate()
            return


# -- unmounting -------------------------------------------------------------------------------


def daemon_pid(mountpoint: str, timeout: float = 5.0) -> int | None:
    """The pid of the daemon serving ``mountpoint`` (None if it does not answer)."""
    found = root_xattr(mountpoint, PID_XATTR, timeout)
    return int(found) if found and found.isdigit() else None


def umount(path: str, lazy: bool = False, timeout: float = 30.0) -> list[dict[str, object]]:
    """Unmount an artfs mount, wait for its daemon to commit the staging areas and exit, and
    return the commit reports. ``timeout`` bounds the wait for anything but the commits."""
    mnt = os.path.abspath(path)
    entry = find_mount(mnt)
    if entry is None or entry.fstype != FSTYPE:
        raise ArtfsError(f"{mnt} is not an artfs mount")
    pid = daemon_pid(mnt)
    record = Path(root_xattr(mnt, STATE_XATTR) or "")
    tool = shutil.which("fusermount3") or shutil.which("fusermount")
    if tool:
        cmd = [tool, "-u", *(["-z"] if lazy else []), mnt]
    else:
        cmd = ["umount", *(["-l"] if lazy else []), mnt]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        message = (proc.stderr.strip().splitlines() or ["failed"])[-1]
        if "busy" in message.lower():
            raise ArtfsError(
                f"{mnt} is busy: a file or directory in it is in use (close it, or use --lazy)"
            )
        raise ArtfsError(f"cannot unmount {mnt}: {message}")
    if pid is None:
        return []
    if not _wait_daemon(pid, record, timeout):
        raise ArtfsError(f"unmounted {mnt}, but its daemon (pid {pid}) is still running")
    found = read_record(record) if record.name else {}
    return found.get("commits", []) if found.get("pid") == pid else []


def _wait_daemon(pid: int, record: Path, timeout: float) -> bool:
    """Wait for the daemon to exit: as long as it takes while it commits, else ``timeout``."""
    deadline = time.monotonic() + timeout
    while running(pid):
        committing = record.name and read_record(record).get("state") == "committing"
        if not committing and time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def stats(mountpoint: str) -> dict[str, object]:
    """The counters of the daemon serving ``mountpoint``."""
    return json.loads(os.getxattr(mountpoint, "user.artfs.stats"))
