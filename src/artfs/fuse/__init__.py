"""The FUSE mount (DESIGN §3): the store as plain files, thin over the client.

Modules, one job each:

- ``nodes``: what an inode is (root, project, artifact, version, alias, directory, file) and
  the attributes the kernel gets for it;
- ``tree``: a version's directories and files, built once from its immutable manifest;
- ``inodes``: stable inode numbers, the kernel's lookup counts and ``forget``;
- ``namespace``: the levels above the files, listed from the store through a TTL cache;
- ``reader``: lazy, verified chunk reads with readahead;
- ``ops``: the pyfuse3 ``Operations`` (reading), with ``readonly`` refusing every change;
- ``background``: cache-size eviction and ``--run`` usage records;
- ``stats``: the counters shown in the ``user.artfs.stats`` xattr of the mount root;
- ``daemon`` and ``system``: mounting, daemonizing, signals, systemd, unmounting.
"""
