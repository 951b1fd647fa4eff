#!/bin/bash
# Runs inside `flux start`: $FA_BIN, $DB, $PLUGIN, $OUT are set.
set -e
FA="$FA_BIN -p $DB"
me=$(id -un); uid=$(id -u)
$FA create-db
$FA add-bank root 1
$FA add-bank --parent-bank=root A 1 --priority=100
$FA add-bank --parent-bank=root B 1 --priority=10
$FA add-user --username=$me --userid=$uid --bank=A
$FA add-user --username=$me --userid=$uid --bank=B
$FA edit-user $me --bank=A --fairshare=0.99
$FA edit-user $me --bank=B --fairshare=0.5
$FA edit-factor --factor=bank --weight=1000
$FA priority-update --no-flux > $OUT/priority-update.out
flux jobtap load -r .priority-default $PLUGIN snapshot=$DB.snapshot
flux queue stop
j1=$(flux submit -S bank=A sleep 60)
j2=$(flux submit -S bank=B --urgency=20 sleep 60)
flux job wait-event -t 20 $j1 priority
flux job wait-event -t 20 $j2 priority
echo $j1 > $OUT/j1; echo $j2 > $OUT/j2
# A later edit of the ledger (not yet sent to the plugin): the bank priority
# shown is the ledger's, the fair-share the one the plugin used.
$FA edit-user $me --bank=A --fairshare=0.1
flux jobs -a -o '{id.f58} {priority} {annotations}' > $OUT/flux-jobs.out 2>&1 || true
$FA jobs $me > $OUT/all.out
LC_ALL=C $FA jobs $me > $OUT/all_c.out
LC_ALL=C.UTF-8 $FA jobs $me -v > $OUT/verbose_utf8.out
$FA jobs $me --bank=B > $OUT/bank_b.out
$FA jobs $me -j $j1 -v > $OUT/verbose.out
$FA jobs $me -f running > $OUT/running.out
$FA jobs $me -c 1 -o '{JOBID}|{PRIORITY}' > $OUT/count.out
set +e
$FA jobs nosuchuser > $OUT/nosuch.out 2> $OUT/nosuch.err; echo $? > $OUT/nosuch.rc
set -e
flux cancel $j1 $j2
$FA jobs $me -f canceled > $OUT/canceled.out
flux queue start
