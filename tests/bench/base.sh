#!/bin/sh
# base.sh COMMIT DIR: today's nomade (COMMIT) built in a scratch git
# worktree at DIR, for `make bench` to time beside the branch. Prints the
# binary's path; prints nothing (and why, on stderr) when it cannot be
# built, and the bench then times the branch alone. make keeps it built.
set -u
commit=$1
dir=$2
log=$dir.log
mkdir -p "$(dirname "$dir")"
if ! want=$(git rev-parse --verify -q "$commit^{commit}"); then
	echo "baseline: no commit $commit in this repository" >&2
	exit 0
fi
# DIR/.git first: git -C on a plain folder would answer for this worktree
if [ ! -f "$dir/.git" ] || [ "$(git -C "$dir" rev-parse HEAD 2>/dev/null)" != "$want" ]; then
	{
		git worktree prune
		if [ -f "$dir/.git" ]; then
			git -C "$dir" checkout -q --detach "$want"
		else
			rm -rf "$dir" && git worktree add -q --detach "$dir" "$want"
		fi
	} >"$log" 2>&1 || {
		echo "baseline: cannot check $commit out in $dir (see $log)" >&2
		exit 0
	}
fi
if ! make -C "$dir" --no-print-directory build/nomade >>"$log" 2>&1; then
	echo "baseline: $commit does not build (see $log)" >&2
	exit 0
fi
echo "$dir/build/nomade"
