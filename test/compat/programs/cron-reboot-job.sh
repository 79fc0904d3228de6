#!/bin/sh
# The real cron daemon runs one @reboot job and mails its output, in the
# caller's mount namespace: a fresh /run (so cron's reboot check file is
# absent and @reboot jobs run at start), empty /etc/cron.d and crontab
# spool, and CRONTAB over /etc/crontab. The job touches DONE as its last
# step; once cron has no child left (the job and the mail to sendmail are
# done), the daemon is stopped; after a minute, it is stopped anyway (exit 1).
# Usage: cron-reboot-job.sh CRONTAB DONE
set -eu
crontab=$1 done=$2
mount -t tmpfs tmpfs /run
mount -t tmpfs tmpfs /etc/cron.d
mount -t tmpfs tmpfs /var/spool/cron/crontabs
mount --bind "$crontab" /etc/crontab
rm -f "$done"
/usr/sbin/cron -f &
cron=$!
# At most a minute for the job and its mail; then cron goes either way.
tries=600
while [ ! -e "$done" ] && [ "$tries" -gt 0 ]; do sleep 0.1; tries=$((tries - 1)); done
while pgrep -P "$cron" >/dev/null && [ "$tries" -gt 0 ]; do sleep 0.1; tries=$((tries - 1)); done
kill "$cron"
# Quietly: when cron dies by the signal itself rather than exiting from its
# handler, sh would print "Terminated", which is no part of what cron mailed.
wait "$cron" 2>/dev/null || true
[ "$tries" -gt 0 ] || { echo "cron-reboot-job: the job or its mail did not finish" >&2; exit 1; }
