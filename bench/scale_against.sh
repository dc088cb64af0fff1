#!/usr/bin/env bash
# The storage proxy's rows of bench/scale.py for an earlier revision and for the working tree,
# alternating, in one run: the earlier way against this one, on the same machine state.
#
#   bash bench/scale_against.sh REV ROUNDS [bench/scale.py options...]
#   bash bench/scale_against.sh 7b6d4cc 2 --pg postgresql+psycopg2://postgres@127.0.0.1:5432/scale \
#       --workers 128 --seconds 90 --trial-s 30 --pool-size 16 --storages proxy
#
# REV is checked out into a temporary git worktree; each round runs bench/scale.py there
# (workers and proxy of REV), then here (workers and proxy of the working tree). Prints each
# row prefixed with its side and round. Uses the Python that runs this repository's tests.
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
rev="$1" rounds="$2"
shift 2
python="${PYTHON:-$here/.venv/bin/python}"
tmp="$(mktemp -d)"
old="$tmp/xtune-$rev"
git -C "$here" worktree add --detach --quiet "$old" "$rev"
trap 'git -C "$here" worktree remove --force "$old"; rm -rf "$tmp"' EXIT

row() {  # row SIDE ROUND FOLDER OPTIONS...: bench/scale.py from FOLDER, its rows labelled
    local side="$1" round="$2" folder="$3"
    shift 3
    if ! (cd "$folder" && PYTHONPATH="$folder" "$python" bench/scale.py "$@" >"$tmp/out" 2>"$tmp/err"); then
        echo "bench/scale.py failed ($side, round $round):" >&2
        tail -20 "$tmp/err" >&2
        exit 1
    fi
    grep -E '^(direct|proxy) ' "$tmp/out" | sed "s/^/$side round $round: /"
}

echo "earlier = $rev ($(git -C "$here" log -1 --format=%cs "$rev")), now = working tree of $(git -C "$here" rev-parse --short HEAD)"
for round in $(seq "$rounds"); do
    row earlier "$round" "$old" "$@"
    row now "$round" "$here" "$@"
done
