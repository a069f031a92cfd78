#!/usr/bin/env bash
# A one-node SLURM cluster on this machine for the CI test (root, no systemd, no slurmdbd).
#   .ci/slurm_cluster.sh start    # munged + slurmctld + slurmd, partition "ci"
#   .ci/slurm_cluster.sh stop     # stops only the daemons this script started, by PID
set -euo pipefail
STATE=${CELLBENCH_SLURM_STATE:-/tmp/cellbench-slurm}

start() {
    rm -rf "$STATE"  # a fresh cluster: no jobs from an earlier run
    mkdir -p "$STATE"/{spool,state,log} /etc/slurm /run/munge
    : > "$STATE/started"
    local host cpus mem
    host=$(hostname -s)
    cpus=$(nproc)
    mem=$(( $(awk '/MemTotal/ {print $2}' /proc/meminfo) / 2048 ))  # half of the memory, in MB
    cat > /etc/slurm/slurm.conf <<CONF
ClusterName=cellbench-ci
SlurmctldHost=$host
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
StateSaveLocation=$STATE/state
SlurmdSpoolDir=$STATE/spool
SlurmctldPidFile=$STATE/slurmctld.pid
SlurmdPidFile=$STATE/slurmd.pid
SlurmctldLogFile=$STATE/log/slurmctld.log
SlurmdLogFile=$STATE/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/affinity
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
SchedulerType=sched/backfill
MpiDefault=none
ReturnToService=2
MinJobAge=86400
NodeName=$host CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=ci Nodes=$host Default=YES MaxTime=INFINITE State=UP
CONF
    if ! (munge -n | unmunge) > /dev/null 2>&1; then  # no working munged yet
        chown munge:munge /run/munge
        runuser -u munge -- /usr/sbin/munged
        sleep 0.5
        echo "munged $(cat /run/munge/munged.pid)" >> "$STATE/started"
    fi
    slurmctld
    slurmd
    for _ in $(seq 1 50); do
        [ -s "$STATE/slurmctld.pid" ] && [ -s "$STATE/slurmd.pid" ] && sinfo -h -o %t 2>/dev/null | grep -q idle && break
        sleep 0.2
    done
    echo "slurmctld $(cat "$STATE/slurmctld.pid")" >> "$STATE/started"
    echo "slurmd $(cat "$STATE/slurmd.pid")" >> "$STATE/started"
    sinfo
}

stop() {
    [ -f "$STATE/started" ] || return 0
    while read -r name pid; do
        kill "$pid" 2>/dev/null && echo "stopped $name ($pid)" || true
    done < <(tac "$STATE/started")
    rm -f "$STATE/started"
}

case "${1:-}" in
    start) start ;;
    stop) stop ;;
    *) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac
