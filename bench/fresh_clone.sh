#!/usr/bin/env bash
# Issue 14's measurement: a fresh clone, empty package caches, `make run` (setup included)
# then `make test`, each timed (wall, user, sys) with the load average before it.
#   bench/fresh_clone.sh [REPO] [DIR]      (defaults: this repository, /tmp/clin-fresh-N)
set -euo pipefail
repo=${1:-$(git -C "$(dirname "$0")/.." rev-parse --show-toplevel)}
dir=${2:-$(mktemp -d /tmp/clin-fresh-XXXX)}
rm -rf "$dir" && git clone -q "$repo" "$dir" && cd "$dir"
export PIP_NO_CACHE_DIR=1 UV_NO_CACHE=1 PYTEST_ADDOPTS="--durations=15"
echo "clone: $dir ($(git log --oneline -1))"
for target in run test; do
  echo "load before make $target: $(cut -d' ' -f1-3 /proc/loadavg)"
  /usr/bin/time -o "make-$target.time" -f "make $target: wall %e s, user %U s, sys %S s" \
    make "$target" > "make-$target.log" 2>&1 || { tail -20 "make-$target.log"; exit 1; }
  cat "make-$target.time"
done
