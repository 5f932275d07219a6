#!/usr/bin/env bash
# Starts a single-node Slurm on this machine for the executor tests: installs
# Debian's slurm-wlm and munge if missing, writes a slurm.conf with this host
# as the only node (no cgroups: proctrack/linuxproc, task/none), starts
# munged, slurmctld and slurmd, and waits until `sinfo` shows the node idle.
# Idempotent: a running, idle cluster is left as it is. Exit 0 when Slurm is
# up; non-zero (with a reason on stderr) when it cannot start, and the Slurm
# tests then skip with that message.
set -uo pipefail

log() { echo "slurm_up: $*" >&2; }

if sinfo -h -o '%T' 2>/dev/null | grep -qx idle; then
  log "already up"; exit 0
fi

if ! command -v slurmctld >/dev/null || ! command -v slurmd >/dev/null || ! command -v munged >/dev/null; then
  if [ "$(id -u)" != 0 ]; then log "not root: cannot apt-get install slurm"; exit 1; fi
  log "installing slurmctld slurmd slurm-client munge"
  export DEBIAN_FRONTEND=noninteractive
  (apt-get update -qq && apt-get install -y -qq --no-install-recommends \
      slurmctld slurmd slurm-client munge) >/tmp/slurm_up.apt.log 2>&1 \
    || { log "apt-get failed (see /tmp/slurm_up.apt.log)"; exit 1; }
fi

HOST=$(hostname -s)
CPUS=$(nproc)
MEM_MB=$(( $(awk '/MemTotal/ {print $2}' /proc/meminfo) / 1024 - 1024 ))
CONF_DIR=/etc/slurm
mkdir -p "$CONF_DIR" /var/spool/slurmctld /var/spool/slurmd /var/log/slurm /run/munge /var/lib/munge /var/log/munge /etc/munge
cat > "$CONF_DIR/slurm.conf" <<CONF
ClusterName=kvlab
SlurmctldHost=$HOST
AuthType=auth/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
SlurmctldPidFile=/run/slurmctld.pid
SlurmdPidFile=/run/slurmd.pid
SlurmdSpoolDir=/var/spool/slurmd
StateSaveLocation=/var/spool/slurmctld
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
SlurmUser=root
SlurmdUser=root
MpiDefault=none
MaxArraySize=100001
MinJobAge=300
KillWait=5
InactiveLimit=0
NodeName=$HOST CPUs=$CPUS RealMemory=$MEM_MB State=UNKNOWN
PartitionName=debug Nodes=$HOST Default=YES MaxTime=INFINITE State=UP OverSubscribe=FORCE:4
CONF

if [ ! -s /etc/munge/munge.key ]; then
  dd if=/dev/urandom bs=1 count=1024 of=/etc/munge/munge.key 2>/dev/null
fi
chown -R munge:munge /etc/munge /var/lib/munge /var/log/munge /run/munge 2>/dev/null || true
chmod 0400 /etc/munge/munge.key; chmod 0700 /etc/munge
if ! pgrep -x munged >/dev/null; then
  if id munge >/dev/null 2>&1; then
    runuser -u munge -- munged --force || munged --force
  else
    munged --force
  fi || { log "munged did not start"; exit 1; }
fi

pkill -x slurmctld 2>/dev/null; pkill -x slurmd 2>/dev/null; sleep 1
slurmctld -c >/var/log/slurm/slurmctld.out 2>&1 || { log "slurmctld did not start"; exit 1; }
slurmd >/var/log/slurm/slurmd.out 2>&1 || { log "slurmd did not start"; exit 1; }

for _ in $(seq 60); do
  state=$(sinfo -h -o '%T' 2>/dev/null | head -1)
  case "$state" in
    idle) log "up: node $HOST idle ($CPUS cpus)"; exit 0 ;;
    down*|drain*) scontrol update nodename="$HOST" state=resume >/dev/null 2>&1 ;;
  esac
  sleep 1
done
log "node did not become idle (state: ${state:-none}); see /var/log/slurm/"
exit 1
