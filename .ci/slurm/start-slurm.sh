#!/usr/bin/env bash
# Start a private single-node SLURM 22.05 (Debian bookworm packages) for the test suite:
# munged, MariaDB, slurmdbd, slurmctld and slurmd as plain background processes (no systemd).
# The PID of every daemon this script starts is recorded in $STATE/started/<daemon>.pid;
# .ci/slurm/stop-slurm.sh stops exactly those PIDs and nothing else.
#
# Usage (as root):  .ci/slurm/start-slurm.sh        # 20-30 s from nothing (apt-get), ~4 s when installed
#   SLURM_CI_INSTALL=0      do not apt-get install (the packages must be there)
#   SLURM_CI_USERS="a b"    also add these users to the account `ci` (root always is)
#   SLURM_CI_STATE_DIR=...  where PIDs are kept (default /run/lungsynth-slurm)
#
# Exit status: 0 running (started now, or already running from an earlier start),
#   2 not root, 3 the packages cannot be installed (no apt-get, no mirror),
#   4 a SLURM / munge / MariaDB that this script did not start is present (refuses to touch it),
#   1 a daemon did not come up (its log is printed; whatever was started is stopped again).
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
INSTALL="${SLURM_CI_INSTALL:-1}"
STATE="${SLURM_CI_STATE_DIR:-/run/lungsynth-slurm}"
PIDS="$STATE/started"
# the marker keeps the folder's former name: it also identifies files that earlier versions wrote
MARK="written by lungsynth ci/slurm/start-slurm.sh"
DAEMONS="munged mariadbd slurmdbd slurmctld slurmd"
PACKAGES="slurmctld slurmd slurm-client slurmdbd munge mariadb-server"
HOST="$(hostname -s)"
t0=$(date +%s)

log() { echo "[start-slurm $(( $(date +%s) - t0 ))s] $*"; }
die() { local code=$1; shift; echo "start-slurm: $*" >&2; exit "$code"; }
ours_running() { [ -s "$PIDS/$1.pid" ] && [ "$(cat "/proc/$(cat "$PIDS/$1.pid")/comm" 2>/dev/null)" = "$1" ]; }

[ "$(id -u)" = 0 ] || die 2 "must run as root (installs packages, writes /etc/slurm, starts daemons)"

if ours_running slurmctld && ours_running slurmd; then
  log "already running (PIDs in $PIDS); stop it with .ci/slurm/stop-slurm.sh"
  exit 0
fi
# what is left of an earlier start (a daemon died): stop it, then start afresh
for d in $DAEMONS; do
  if ours_running "$d"; then log "stopping what is left of an earlier start"; "$HERE/stop-slurm.sh"; break; fi
done

# ---- refuse to touch a SLURM that is not ours ------------------------------------------------
if [ -e /etc/slurm/slurm.conf ] && ! grep -q "$MARK" /etc/slurm/slurm.conf; then
  die 4 "/etc/slurm/slurm.conf exists and was not written by this script: refusing to replace a real SLURM setup"
fi
for d in $DAEMONS; do
  if pgrep -x "$d" >/dev/null 2>&1 && ! ours_running "$d"; then
    die 4 "a $d process is running that this script did not start: refusing to start a second one"
  fi
done

# ---- packages --------------------------------------------------------------------------------
installed() { for p in "$@"; do dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || return 1; done; }
if ! installed $PACKAGES; then
  [ "$INSTALL" = 1 ] || die 3 "packages missing ($PACKAGES) and SLURM_CI_INSTALL=0"
  command -v apt-get >/dev/null || die 3 "no apt-get: install $PACKAGES by hand"
  log "apt-get install $PACKAGES"
  apt-get update -qq || die 3 "apt-get update failed (no package mirror reachable?)"
  # the packages' maintainer scripts must not start the daemons themselves
  tmp_policy=""
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d; chmod +x /usr/sbin/policy-rc.d; tmp_policy=1
  fi
  rc=0
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $PACKAGES >/dev/null || rc=$?
  [ -z "$tmp_policy" ] || rm -f /usr/sbin/policy-rc.d
  [ "$rc" = 0 ] || die 3 "apt-get install $PACKAGES failed (exit $rc)"
fi

# from here on, a failure stops whatever this script has started
trap 'rc=$?; if [ $rc -ne 0 ]; then "$HERE/stop-slurm.sh" >&2 || true; fi' EXIT

mkdir -p "$STATE" "$PIDS" /var/log/slurm /var/lib/slurm/slurmctld /var/lib/slurm/slurmd /run/munge /run/mysqld
chown slurm:slurm "$STATE" /var/log/slurm /var/lib/slurm/slurmctld
chown munge:munge /run/munge; chmod 0755 /run/munge
chown mysql:mysql /run/mysqld

# the host name must resolve (slurmd finds its NodeName by it)
getent hosts "$HOST" >/dev/null || echo "127.0.0.1 $HOST" >> /etc/hosts

# start NAME LOG CMD...: run CMD in its own session, in the foreground of that session, record $!
start() {
  local name=$1 out=$2; shift 2
  log "starting $name"
  setsid "$@" >"$out" 2>&1 < /dev/null &
  echo $! > "$PIDS/$name.pid"
}
# wait_for NAME LOG TRIES CMD...: poll CMD every 0.2 s; on failure print the log and fail
wait_for() {
  local name=$1 logf=$2 tries=$3; shift 3
  for _ in $(seq "$tries"); do "$@" >/dev/null 2>&1 && return 0; sleep 0.2; done
  echo "start-slurm: $name did not come up; last lines of $logf:" >&2
  tail -n 30 "$logf" >&2 || true
  exit 1
}

# ---- munge -----------------------------------------------------------------------------------
if [ ! -s /etc/munge/munge.key ]; then
  mungekey --create --keyfile /etc/munge/munge.key
  chown munge:munge /etc/munge/munge.key; chmod 0400 /etc/munge/munge.key
fi
# setpriv (not su/runuser) so that the recorded PID is munged itself
start munged /var/log/slurm/munged.out setpriv --reuid=munge --regid=munge --init-groups /usr/sbin/munged --foreground
wait_for munged /var/log/slurm/munged.out 50 sh -c 'munge -n </dev/null | unmunge'

# ---- configuration ---------------------------------------------------------------------------
CPUS=$(nproc --all)   # --all: plain nproc honours OMP_NUM_THREADS, which a caller may have set to 1
MEM=$(awk '/MemTotal/ {printf "%d", $2/1024*0.85}' /proc/meminfo)
mkdir -p /etc/slurm
sed -e "s|@HOST@|$HOST|g" -e "s|@CPUS@|$CPUS|" -e "s|@MEM@|$MEM|" -e "s|@STATE@|$STATE|g" \
  "$HERE/slurm.conf.template" > /etc/slurm/slurm.conf
chmod 0644 /etc/slurm/slurm.conf
rm -f /etc/slurm/cgroup.conf
sed -e "s|@HOST@|$HOST|g" -e "s|@STATE@|$STATE|g" "$HERE/slurmdbd.conf.template" > /etc/slurm/slurmdbd.conf
chown slurm:slurm /etc/slurm/slurmdbd.conf; chmod 0600 /etc/slurm/slurmdbd.conf

# ---- MariaDB + slurmdbd ----------------------------------------------------------------------
[ -d /var/lib/mysql/mysql ] || mariadb-install-db --user=mysql --datadir=/var/lib/mysql >/dev/null
start mariadbd /var/log/slurm/mariadbd.out /usr/sbin/mariadbd --user=mysql --datadir=/var/lib/mysql \
  --socket=/run/mysqld/mysqld.sock --pid-file=/run/mysqld/mysqld.pid --skip-networking \
  --innodb-buffer-pool-size=256M --innodb-lock-wait-timeout=900
wait_for mariadbd /var/log/slurm/mariadbd.out 150 mariadb -e 'select 1'
mariadb -e "CREATE DATABASE IF NOT EXISTS slurm_acct_db;
            CREATE USER IF NOT EXISTS 'slurm'@'localhost' IDENTIFIED BY 'slurmdbpass';
            GRANT ALL ON slurm_acct_db.* TO 'slurm'@'localhost'; FLUSH PRIVILEGES;"
start slurmdbd /var/log/slurm/slurmdbd.out /usr/sbin/slurmdbd -D
wait_for slurmdbd /var/log/slurm/slurmdbd.log 100 sacctmgr -n list cluster
sacctmgr -i add cluster lungsynth-ci >/dev/null 2>&1 || true

# ---- slurmctld + slurmd ----------------------------------------------------------------------
start slurmctld /var/log/slurm/slurmctld.out /usr/sbin/slurmctld -D -i
wait_for slurmctld /var/log/slurm/slurmctld.log 100 sh -c 'scontrol ping | grep -q UP'
# the account the tests submit with; AccountingStorageEnforce=associations needs it
sacctmgr -i add account ci Description=ci Organization=ci >/dev/null 2>&1 || true
for u in root ${SLURM_CI_USERS:-}; do
  sacctmgr -i add user "$u" Account=ci DefaultAccount=ci >/dev/null 2>&1 || true
done
start slurmd /var/log/slurm/slurmd.out /usr/sbin/slurmd -D
wait_for slurmd /var/log/slurm/slurmd.log 150 sh -c "sinfo -h -o %T | grep -qE '^(idle|mixed|allocated)'"
sinfo
log "SLURM up (cpus=$CPUS, mem=${MEM}M, partition debug, account ci); PIDs in $PIDS"
