"""Commits in a running mount: one at a time per area, asked for over an xattr.

``artfs commit`` reaches the daemon through the file system itself: it sets the
``user.artfs.commit`` xattr of a ``@staging`` directory to a JSON request, which returns once
the commit is done, and reads the report back from ``user.artfs.commit.<request id>``.
A commit snapshots the area; writes to it meanwhile go on (``snapshots``).
"""

from __future__ import annotations

import errno
import json
import logging
import time
from collections import OrderedDict

import pyfuse3
import trio

from . import control, snapshots
from .areas import StagingNamespace
from .commit import CommitOptions, CommitReport, Committer, finish, unchanged
from .staging import StagingArea
from .stats import MountStats

log = logging.getLogger(__name__)
COMMIT_XATTR = control.COMMIT_XATTR.encode()
RESULT_PREFIX = control.RESULT_PREFIX.encode()
RESULTS_KEPT = 64


class Commits:
    def __init__(self, namespace: StagingNamespace, committer: Committer, stats: MountStats):
        self.ns = namespace
        self.committer = committer
        self.stats = stats
        self._locks: dict[str, trio.Lock] = {}
        self._results: OrderedDict[str, bytes] = OrderedDict()

    def result(self, name: bytes) -> bytes:
        """The report a request named in ``user.artfs.commit.<id>`` got."""
        found = self._results.get(name[len(RESULT_PREFIX) :].decode("utf-8", "replace"))
        if found is None:
            raise pyfuse3.FUSEError(pyfuse3.ENOATTR)
        return found

    async def request(self, area: StagingArea, value: bytes) -> None:
        """A request set on ``user.artfs.commit``: commit now, keep the report."""
        try:
            request = json.loads(value)
            options = CommitOptions.from_json(request)
            request_id = str(request["id"])
        except (ValueError, KeyError) as exc:
            log.warning("bad commit request %r: %s", value[:200], exc)
            raise pyfuse3.FUSEError(errno.EINVAL) from None
        report = await self.commit(area, options)
        self._results[request_id] = json.dumps(report.to_json()).encode()
        while len(self._results) > RESULTS_KEPT:
            self._results.popitem(last=False)

    async def commit(self, area: StagingArea, options: CommitOptions) -> CommitReport:
        """Commit an area now; writes to it meanwhile go on (a file changed during the
        commit is copied first, so the commit sees what it snapshotted)."""
        await self.ns.ready(area)
        lock = self._locks.setdefault(area.key.collection, trio.Lock())
        async with lock:
            snapshot = snapshots.take(area)
            if not snapshot.changes:
                snapshots.released(area, snapshot)
                return unchanged(area)
            started = time.monotonic()
            report, manifest = await trio.to_thread.run_sync(
                self.committer.send, area, snapshot, options
            )
            self.stats.committed(time.monotonic() - started, report.ok)
            finish(area, snapshot, report, manifest)
        artifact = self.ns.owner(area)
        if artifact is not None and report.ok:  # show the new version at once
            self.ns.forget_listing(artifact)
            if artifact.parent is not None:
                self.ns.forget_listing(artifact.parent)
                await self.ns.listing(artifact.parent)  # (an artifact made by mkdir: now stored)
        return report

    async def pending(self) -> None:
        """Commit the areas whose commit on an earlier unmount failed (the store may be back)."""
        for area in self.ns.areas.stored():
            if area.pending is not None:
                options = CommitOptions.from_json(area.pending)
                log.info("%s: committing what an earlier unmount could not", area.key.short)
                await self.commit(area, options)
