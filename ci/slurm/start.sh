#!/usr/bin/env bash
# Start a real single-node SLURM (munged, slurmctld, slurmd on 127.0.0.1) for the `slurm` tests.
#
#   ci/slurm/start.sh          # as root on Debian/Ubuntu; stop with ci/slurm/stop.sh
#
# Installs what is missing with apt-get (munge slurmctld slurmd slurm-client slurm-wlm-torque,
# the last for the PBS-style qsub/qstat/qdel wrappers), writes /etc/slurm/slurm.conf (where sbatch,
# sinfo and the wrappers look for it) and keeps state, spool, logs and PID files in
# ${TILEVISION_SLURM_DIR:-/tmp/tilevision-slurm}. Starting while it runs does nothing.
#
# Environment:
#   TILEVISION_SLURM_DIR       state folder (default /tmp/tilevision-slurm)
#   TILEVISION_SLURM_TIMEOUT   seconds to wait for the node to become idle (default 60)
#   TILEVISION_SLURM_CPUS      CPUs the node offers (default: the machine's; more oversubscribes)
#   TILEVISION_SLURM_REQUIRED  1: fail (exit 1) instead of exit 0 when SLURM cannot run here
#
# Exits 0 with the reason when it cannot run here (not root, no apt-get, install failed), so that
# CI elsewhere skips the slurm tests instead of failing; exits 1 when the daemons do not come up.
set -euo pipefail

DIR=${TILEVISION_SLURM_DIR:-/tmp/tilevision-slurm}
TIMEOUT=${TILEVISION_SLURM_TIMEOUT:-60}
CONF=/etc/slurm/slurm.conf
MARKER="# written by tilevision ci/slurm/start.sh"
PACKAGES=(munge slurmctld slurmd slurm-client slurm-wlm-torque)
export PATH=$PATH:/usr/sbin:/sbin
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
T0=$EPOCHREALTIME

say() { echo "ci/slurm/start.sh: $*"; }
since() { awk -v a="$1" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f s", b - a }'; }
cannot() {
  say "SLURM not started: $*"
  [[ ${TILEVISION_SLURM_REQUIRED:-0} == 1 ]] && exit 1
  exit 0
}
alive() { # alive NAME: daemon NAME runs as recorded in $DIR/NAME.pid (a zombie counts as stopped)
  local pid state
  [[ -s $DIR/$1.pid ]] || return 1
  pid=$(<"$DIR/$1.pid")
  state=$(ps -o stat=,comm= -p "$pid" 2>/dev/null) || return 1
  [[ $state != Z* && $state == *" $1" ]]
}
munge_ok() { munge -n 2>/dev/null | unmunge >/dev/null 2>&1; }
node_state() { timeout 5 sinfo -h -N -n "$NODE" -o %T 2>/dev/null | head -n 1; }
logs() {
  local f
  for f in "$DIR"/log/*.log "$DIR"/log/*.out /var/log/munge/munged.log; do
    [[ -s $f ]] || continue
    echo "---- last lines of $f"
    tail -n 15 "$f"
  done
}

# --- can it run here? -----------------------------------------------------------------------
[[ $(id -u) == 0 ]] || cannot "needs root (installs packages, runs munged as the munge user)"
NODE=$(hostname -s)
mkdir -p "$DIR"

if alive slurmctld && alive slurmd && munge_ok; then
  say "already running (node $NODE: $(node_state); state in $DIR)"
  exit 0
fi
if compgen -G "$DIR/*.pid" >/dev/null; then
  say "partly running: stopping the rest first"
  TILEVISION_SLURM_DIR=$DIR bash "$HERE/stop.sh"
fi

missing=()
for cmd in munged slurmctld slurmd sbatch qsub; do
  command -v "$cmd" >/dev/null || missing+=("$cmd")
done
if ((${#missing[@]})); then
  command -v apt-get >/dev/null || cannot "${missing[*]} missing and no apt-get to install ${PACKAGES[*]}"
  t=$EPOCHREALTIME
  export DEBIAN_FRONTEND=noninteractive
  install=(apt-get install -y -q --no-install-recommends "${PACKAGES[@]}")
  if ! "${install[@]}" >"$DIR/apt.log" 2>&1; then
    say "apt-get install failed; running apt-get update and trying again"
    if ! { apt-get update -q && "${install[@]}"; } >>"$DIR/apt.log" 2>&1; then
      tail -n 20 "$DIR/apt.log"
      cannot "apt-get install ${PACKAGES[*]} failed (log: $DIR/apt.log)"
    fi
  fi
  say "installed ${PACKAGES[*]} in $(since "$t")"
fi
if [[ -e $CONF ]] && ! grep -qF "$MARKER" "$CONF"; then
  cannot "$CONF exists and was not written by this script: not overwriting a real SLURM setup"
fi

# --- munge ----------------------------------------------------------------------------------
getent passwd munge >/dev/null || cannot "no munge user (the munge package creates it)"
install -d -o munge -g munge -m 0755 /run/munge
install -d -o munge -g munge -m 0700 /etc/munge /var/lib/munge /var/log/munge
if [[ ! -s /etc/munge/munge.key ]]; then
  mungekey --create --keyfile=/etc/munge/munge.key 2>/dev/null ||
    dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 status=none
fi
chown munge:munge /etc/munge/munge.key
chmod 0600 /etc/munge/munge.key
mkdir -p "$DIR/log" "$DIR/run"
if munge_ok; then
  say "using the munged that already runs"
else
  # setpriv and nohup exec, so $! is munged itself
  nohup setpriv --reuid=munge --regid=munge --init-groups munged -F \
    >"$DIR/log/munged.out" 2>&1 </dev/null &
  echo $! >"$DIR/munged.pid"
  for _ in $(seq 100); do
    munge_ok && break
    alive munged || break
    sleep 0.1
  done
  munge_ok || {
    logs
    TILEVISION_SLURM_DIR=$DIR bash "$HERE/stop.sh"
    say "munged did not start"
    exit 1
  }
fi

# --- slurm.conf -----------------------------------------------------------------------------
hw=$(slurmd -C | head -n 1 | sed -E 's/^NodeName=[^ ]+ //; s/ *UpTime=.*//')
overrides=
if [[ -n ${TILEVISION_SLURM_CPUS:-} ]]; then
  mem=$(sed -nE 's/.*(RealMemory=[0-9]+).*/\1/p' <<<"$hw")
  hw="CPUs=$TILEVISION_SLURM_CPUS $mem"
  overrides="SlurmdParameters=config_overrides"
fi
rm -rf "$DIR/state" "$DIR/spool"
mkdir -p "$DIR/state" "$DIR/spool" /etc/slurm
cat >"$CONF" <<EOF
$MARKER: a single-node SLURM for tests.
# State, spool and logs are in $DIR; stop with ci/slurm/stop.sh.
ClusterName=tilevision
SlurmctldHost=$NODE(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
MpiDefault=none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
MailProg=/bin/true
SchedulerParameters=batch_sched_delay=0,sched_min_interval=0
KillWait=5
$overrides
StateSaveLocation=$DIR/state
SlurmdSpoolDir=$DIR/spool
SlurmctldPidFile=$DIR/run/slurmctld.pid
SlurmdPidFile=$DIR/run/slurmd.pid
SlurmctldLogFile=$DIR/log/slurmctld.log
SlurmdLogFile=$DIR/log/slurmd.log
NodeName=$NODE NodeAddr=127.0.0.1 $hw State=UNKNOWN
PartitionName=debug Nodes=$NODE Default=YES MaxTime=INFINITE State=UP
EOF
cp "$CONF" "$DIR/slurm.conf"

# --- daemons --------------------------------------------------------------------------------
t=$EPOCHREALTIME
nohup slurmctld -D >"$DIR/log/slurmctld.out" 2>&1 </dev/null &
echo $! >"$DIR/slurmctld.pid"
nohup slurmd -D -N "$NODE" >"$DIR/log/slurmd.out" 2>&1 </dev/null &
echo $! >"$DIR/slurmd.pid"

deadline=$((SECONDS + TIMEOUT))
until [[ $(node_state) == idle ]]; do
  if ((SECONDS >= deadline)) || ! alive slurmctld || ! alive slurmd; then
    logs
    reason="node $NODE not idle after ${TIMEOUT} s (state: '$(node_state)')"
    alive slurmctld || reason="slurmctld exited"
    alive slurmd || reason="slurmd exited"
    TILEVISION_SLURM_DIR=$DIR bash "$HERE/stop.sh"
    say "SLURM did not start: $reason (logs above, in $DIR/log)"
    exit 1
  fi
  sleep 0.2
done
say "node $NODE idle after $(since "$t") (total $(since "$T0")); state in $DIR," \
  "stop with ci/slurm/stop.sh"
