#!/bin/sh
# The real cron daemon runs one @reboot job and mails its output, in the
# caller's mount namespace: a fresh /run (so cron's reboot check file is
# absent and @reboot jobs run at start), empty /etc/cron.d and crontab
# spool, and CRONTAB over /etc/crontab. The job touches DONE as its last
# step; once cron has no child left (the job and the mail to sendmail are
# done), the daemon is stopped.
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
while [ ! -e "$done" ]; do sleep 0.1; done
while pgrep -P "$cron" >/dev/null; do sleep 0.1; done
kill "$cron"
wait "$cron" || true
