#!/usr/bin/env bash
# Stop the single-node SLURM started by ci/slurm/start.sh: cancel all jobs, then stop slurmd,
# slurmctld and munged by the PIDs recorded in ${TILEVISION_SLURM_DIR:-/tmp/tilevision-slurm}.
# Safe to run when nothing runs (for a CI trap); always exits 0.
set -uo pipefail

DIR=${TILEVISION_SLURM_DIR:-/tmp/tilevision-slurm}
export PATH=$PATH:/usr/sbin:/sbin
T0=$EPOCHREALTIME

say() { echo "ci/slurm/stop.sh: $*"; }
since() { awk -v a="$1" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f s", b - a }'; }
running() { # running PID NAME: daemon NAME runs with that PID (a zombie counts as stopped)
  local state
  state=$(ps -o stat=,comm= -p "$1" 2>/dev/null) || return 1
  [[ $state != Z* && $state == *" $2" ]]
}
alive() { [[ -s $DIR/$1.pid ]] && running "$(<"$DIR/$1.pid")" "$1"; }

if ! compgen -G "$DIR/*.pid" >/dev/null; then
  say "nothing to stop (no PID files in $DIR)"
  exit 0
fi

if alive slurmctld && command -v squeue >/dev/null; then
  mapfile -t jobs < <(timeout 10 squeue -h -o %i 2>/dev/null)
  if ((${#jobs[@]})); then
    timeout 10 scancel "${jobs[@]}" 2>/dev/null
    for _ in $(seq 50); do
      [[ -z $(timeout 5 squeue -h -o %i 2>/dev/null) ]] && break
      sleep 0.2
    done
    say "cancelled jobs ${jobs[*]}"
  fi
fi

for name in slurmd slurmctld munged; do
  f=$DIR/$name.pid
  [[ -s $f ]] || continue
  pid=$(<"$f")
  if running "$pid" "$name"; then
    kill -TERM "$pid" 2>/dev/null
    for _ in $(seq 50); do
      running "$pid" "$name" || break
      sleep 0.2
    done
    if running "$pid" "$name"; then
      kill -KILL "$pid" 2>/dev/null
      say "$name ($pid) did not stop on SIGTERM within 10 s: killed"
    fi
  fi
  rm -f "$f"
done
say "stopped slurmd, slurmctld and munged in $(since "$T0")"
exit 0
