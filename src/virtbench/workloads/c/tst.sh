#!/bin/sh
# tst.sh INPUT - the work of one concurrent copy in the Shell Scripts workload (virtbench):
# sort a text file into a temp file, od it piped to a numeric sort, grep a word piped
# through tee and wc, then remove the temp files.  Temp names carry this shell's pid.
sort <"$1" >sort.$$ || exit 1
od sort.$$ | sort -n -k 1 >od.$$ || exit 1
grep the sort.$$ | tee grep.$$ | wc >wc.$$ || exit 1
rm sort.$$ od.$$ grep.$$ wc.$$
