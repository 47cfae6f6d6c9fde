"""The FUSE mount (docs/SEMANTICS.md): the store as plain files, thin over the client.

Modules, one job each:

- ``nodes``: what an inode is (root, project, artifact, version, alias, directory, file,
  symlink) and the attributes the kernel gets for it (modes and mtimes from the manifest);
- ``tree``: a version's directories and files, built once from its immutable manifest, and
  an alias's directories showing them;
- ``inodes``: stable inode numbers, the kernel's lookup counts and ``forget``;
- ``namespace``: the levels above the files, listed from the store through a TTL cache;
- ``reader``: lazy, verified chunk reads with readahead;
- ``ops``: the pyfuse3 ``Operations`` (reading), with ``readonly`` refusing every change;
- ``errnos``: the one place failures become errnos (and are logged);
- ``writable``: the layer in front of them serving ``@staging/`` (and ``mkdir`` of artifacts),
  dispatching to ``cow`` (a staged file's first change copies its bytes) and ``commits``
  (commits in a running mount, also over the ``user.artfs.commit`` xattr);
- ``staged`` and ``staging``: a staging area's nodes, and the area itself, whose tree is kept
  in its SQLite ``journal`` and whose changed files' bytes in ``localfiles`` (neither needs
  pyfuse3: ``artfs status`` reads them);
- ``changes``: what a staging area would commit; ``snapshots``: what a commit of it sends
  and how the area settles after; ``commit``: committing it through the client;
- ``areas``: a mount's staging areas, and their place in the namespace;
- ``control``: how ``artfs commit``/``umount``/``status`` reach the daemon and its state;
- ``background``: cache-size eviction and ``--run`` usage records;
- ``stats``: the counters shown in the ``user.artfs.stats`` xattr of the mount root;
- ``daemon`` and ``system``: mounting, daemonizing, signals, systemd, unmounting (and the
  commits that follow it).
"""
