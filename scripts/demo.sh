#!/usr/bin/env bash
# The main job on the embedded store: set up, version a sample dataset twice, get it back,
# then read it through a mount.
# Everything lives under .demo/ (store, cache, state); run it again to see deduplication.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
export PATH="$PWD/.venv/bin:$PATH"
demo="$PWD/.demo"
export ARTFS_HOME="$demo/store" ARTFS_CACHE_DIR="$demo/cache" ARTFS_STATE_DIR="$demo/state"
export ARTFS_PROJECT=demo

echo "== a sample dataset: 20 images in two splits and a labels file"
python3 - "$demo/mnist" <<'PY'
import os, random, sys
root = sys.argv[1]
rng = random.Random(7)
for split, n in (("train", 16), ("test", 4)):
    os.makedirs(f"{root}/{split}", exist_ok=True)
    for i in range(n):
        with open(f"{root}/{split}/{i:04d}.png", "wb") as f:
            f.write(rng.randbytes(50_000))
with open(f"{root}/labels.csv", "w") as f:
    f.write("file,label\n" + "".join(f"train/{i:04d}.png,{i % 10}\n" for i in range(16)))
PY

echo "== artfs put (v0), then change two files and put again (v1: only those two are sent)"
artfs put "$demo/mnist" -n demo/mnist -t dataset -d "sample images"
head -c 50000 /dev/urandom > "$demo/mnist/train/0003.png"
echo "train/0003.png,9" >> "$demo/mnist/labels.csv"
artfs put "$demo/mnist" -n demo/mnist -a best
artfs ls demo/mnist

echo "== artfs get v0 and latest, and compare with the original tree"
artfs get demo/mnist:v0 --root "$demo/out-v0"
artfs get demo/mnist:latest --root "$demo/out-latest"
diff -r "$demo/mnist" "$demo/out-latest" && echo "latest matches the dataset byte for byte"

echo "== artfs mount: every version as read-only files; only the bytes read are fetched"
mnt="$demo/mnt"
mounted() { grep -qs " $mnt fuse" /proc/mounts; }
unmount() { mounted && { artfs umount "$mnt" || fusermount3 -u -z "$mnt"; } || true; }
unmount  # a mount left by an earlier run that failed
trap unmount EXIT
mkdir -p "$mnt"
artfs mount "$mnt"  # returns once the mount is live; a daemon serves it
ls -l "$mnt/demo/mnist"
version_of() { python3 -c 'import os, sys; print(os.getxattr(sys.argv[1], "user.artfs.version").decode())' "$1"; }
echo "the alias directory latest/ shows $(version_of "$mnt/demo/mnist/latest")"
du -sh "$mnt/demo/mnist/latest"
find "$mnt/demo/mnist/latest/" -type f | sort | sed -n '1,5p'
head -3 "$mnt/demo/mnist/latest/labels.csv"
(cd "$demo/mnist" && find . -type f | sort | xargs sha256sum) > "$demo/original.sha256"
(cd "$mnt/demo/mnist/latest" && sha256sum --quiet -c "$demo/original.sha256")
echo "every file read through the mount matches the original (sha256)"
if command -v getfattr >/dev/null; then getfattr -d --absolute-names "$mnt/demo/mnist/latest"; fi
python3 - "$mnt" <<'PY'
import json, os, sys
s = json.loads(os.getxattr(sys.argv[1], "user.artfs.stats"))
print(
    f"daemon: {s['reads']} reads; {s['in_place_chunks']} chunks read in place from the store"
    f" (each checked once: {s['in_place_checks']}), {s['chunks_fetched']} copied into a cache"
)
PY
artfs umount "$mnt"
trap - EXIT
echo "== unmounted $mnt"
