#!/bin/sh
# multi.sh N - one run of the Shell Scripts workload (virtbench).
# Starts N concurrent copies of tst.sh in the current directory and waits for all of
# them; fails when any copy fails.  Run by `looper`, which counts completed runs.
# The locale is fixed like UnixBench's harness does (sort's speed depends on it).
unset LC_ALL LC_COLLATE LC_CTYPE LANGUAGE
LANG=en_US.utf8
export LANG
here=${0%/*}
n=${1:?usage: multi.sh N}
pids=
i=0
while [ "$i" -lt "$n" ]; do
    /bin/sh "$here/tst.sh" "$here/shell-input.txt" &
    pids="$pids $!"
    i=$((i + 1))
done
status=0
for pid in $pids; do
    wait "$pid" || status=1
done
exit $status
