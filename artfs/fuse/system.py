"""What the daemon asks of the system: the mount table, systemd's notify socket, the kernel
readahead of the mount, file-descriptor limits, and whether a process still runs."""

from __future__ import annotations

import os
import re
import resource
import socket
from dataclasses import dataclass

FSTYPE = "fuse.artfs"
_OCTAL = re.compile(r"\\([0-7]{3})")


@dataclass(frozen=True)
class MountEntry:
    mountpoint: str
    fstype: str
    source: str
    device: str  # "major:minor", which names the mount's backing-device info in sysfs


def find_mount(path: str) -> MountEntry | None:
    """The topmost mount at ``path`` (an absolute path), from /proc/self/mountinfo."""
    found = None
    try:
        with open("/proc/self/mountinfo") as f:
            lines = f.readlines()
    except OSError:
        return None
    for line in lines:
        left, _, right = line.partition(" - ")
        fields, tail = left.split(), right.split()
        if len(fields) < 5 or len(tail) < 2:
            continue
        where = _OCTAL.sub(lambda m: chr(int(m.group(1), 8)), fields[4])
        if where == path:
            found = MountEntry(where, tail[0], tail[1], fields[2])
    return found


def set_readahead(entry: MountEntry, kib: int) -> bool:
    """Let the kernel read ahead ``kib`` on this mount (root only): sequential readers then
    send 1 MiB requests instead of 128 KiB ones."""
    try:
        with open(f"/sys/class/bdi/{entry.device}/read_ahead_kb", "w") as f:
            f.write(str(kib))
        return True
    except OSError:
        return False


def sd_notify(message: str) -> bool:
    """Tell systemd (``Type=notify``) about our state, if it asked us to."""
    address = os.environ.get("NOTIFY_SOCKET")
    if not address:
        return False
    if address.startswith("@"):
        address = "\0" + address[1:]
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            sock.connect(address)
            sock.sendall(message.encode())
    except OSError:
        return False
    return True


def raise_fd_limit() -> None:
    """Open chunk files count against the descriptor limit: take the hard limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def running(pid: int) -> bool:
    """Whether ``pid`` is a live process (a zombie has finished)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            state = f.read().rpartition(")")[2].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")
