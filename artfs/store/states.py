"""The states of a chunk row (docs/FORMAT.md, "Chunk states")."""

from __future__ import annotations

UPLOADING = "uploading"  # row claimed, bytes being written (or moved into place)
UNVERIFIED = "unverified"  # bytes in place, sent straight to the bucket, not yet checked
LIVE = "live"  # bytes in place and verified against the digest
LOST = "lost"  # bytes failed their check and were deleted: missing until uploaded again
DELETING = "deleting"  # chosen by gc or a deletion: blob being removed, uploads wait

STORED = (LIVE, UNVERIFIED)  # bytes in place: readable by whoever may see the chunk
