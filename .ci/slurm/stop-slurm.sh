#!/usr/bin/env bash
# Stop the daemons that .ci/slurm/start-slurm.sh started, by their recorded PIDs only
# (TERM, then KILL after 10 s). A recorded PID is only signalled while it still belongs to the
# daemon it was recorded for (/proc/PID/comm), so a stale file never hits an unrelated process.
# Jobs still on the private test cluster are cancelled first, so no job step outlives slurmd.
STATE="${SLURM_CI_STATE_DIR:-/run/lungsynth-slurm}"
PIDS="$STATE/started"
[ -d "$PIDS" ] || exit 0

alive() { [ "$(cat "/proc/$1/comm" 2>/dev/null)" = "$2" ]; }

if [ -s "$PIDS/slurmctld.pid" ] && alive "$(cat "$PIDS/slurmctld.pid")" slurmctld; then
  jobs=$(squeue -h -o %i 2>/dev/null)
  if [ -n "$jobs" ]; then
    echo "cancelling jobs left on the test cluster: $(echo $jobs)"
    scancel $jobs 2>/dev/null || true
    for _ in $(seq 50); do [ -z "$(squeue -h -o %i 2>/dev/null)" ] && break; sleep 0.2; done
  fi
fi

for d in slurmd slurmctld slurmdbd mariadbd munged; do
  f="$PIDS/$d.pid"; [ -s "$f" ] || continue
  pid=$(cat "$f")
  if alive "$pid" "$d"; then
    kill -TERM "$pid"
    for _ in $(seq 100); do alive "$pid" "$d" || break; sleep 0.1; done
    if alive "$pid" "$d"; then kill -KILL "$pid"; echo "killed $d ($pid)"; else echo "stopped $d ($pid)"; fi
  fi
  rm -f "$f"
done
