#!/usr/bin/env bash
# Set up artfs on a Debian machine: system packages it lacks, a virtualenv, the package.
#   scripts/setup.sh          what the main job needs (FUSE, the mount extras)
#   scripts/setup.sh --test   also what the tests need (PostgreSQL, test tools)
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(fuse3 libfuse3-dev pkg-config gcc python3-dev python3-venv)
extras="mount,server"
if [[ "${1:-}" == "--test" ]]; then
  packages+=(postgresql psmisc attr curl rsync graphviz chromium chromium-driver)
  extras="test"
fi

missing=()
for pkg in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
# A Python built outside Debian (pyenv, a container image) brings its own headers and venv.
if python3 -c 'import sysconfig, os, sys; h = sysconfig.get_paths()["include"]; sys.exit(not os.path.exists(h + "/Python.h"))' 2>/dev/null; then
  missing=("${missing[@]/python3-dev}")
fi
if python3 -c 'import venv, ensurepip' 2>/dev/null; then
  missing=("${missing[@]/python3-venv}")
fi
missing=($(printf '%s\n' "${missing[@]}" | grep -v '^$' || true))
if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]} with apt" >&2
  sudo=""; [[ $(id -u) -ne 0 ]] && sudo="sudo"
  $sudo apt-get update -qq
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

[[ -x .venv/bin/python ]] || python3 -m venv .venv
.venv/bin/python -m pip install -q --disable-pip-version-check -e ".[${extras}]"
echo "setup: ready (.venv/bin/artfs)" >&2
