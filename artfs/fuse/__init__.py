"""The FUSE mount (docs/SEMANTICS.md): the store as plain files, thin over the client.

Modules, one job each:

- ``nodes``: what an inode is (root, project, artifact, version, alias, directory, file) and
  the attributes the kernel gets for it;
- ``tree``: a version's directories and files, built once from its immutable manifest, and
  an alias's directories showing them;
- ``inodes``: stable inode numbers, the kernel's lookup counts and ``forget``;
- ``namespace``: the levels above the files, listed from the store through a TTL cache;
- ``reader``: lazy, verified chunk reads with readahead;
- ``ops``: the pyfuse3 ``Operations`` (reading), with ``readonly`` refusing every change;
- ``writable``: the layer in front of them serving ``@staging/`` (and ``mkdir`` of artifacts);
- ``staged`` and ``staging``: a staging area's nodes, and the area itself, kept on local disk;
- ``changes``: what a staging area would commit; ``commit``: committing it through the client;
- ``areas``: a mount's staging areas, and their place in the namespace;
- ``control``: how ``artfs commit``/``umount``/``status`` reach the daemon and its state;
- ``background``: cache-size eviction and ``--run`` usage records;
- ``stats``: the counters shown in the ``user.artfs.stats`` xattr of the mount root;
- ``daemon`` and ``system``: mounting, daemonizing, signals, systemd, unmounting (and the
  commits that follow it).
"""
