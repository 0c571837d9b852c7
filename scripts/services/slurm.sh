#!/usr/bin/env bash
# A throwaway one-node Slurm cluster on 127.0.0.1, for tests and for trying `thaw slurm`:
#   scripts/services/slurm.sh start DIR   # munge + slurmctld + slurmd; prints SLURM_CONF=DIR/slurm.conf
#   scripts/services/slurm.sh stop DIR
# Needs Debian's slurm-wlm and munge (scripts/test.sh installs them) and root (the daemons
# run as root here; sudo is used when this script is not root). Client commands need
# SLURM_CONF=DIR/slurm.conf in their environment.
set -euo pipefail
action=${1:?usage: slurm.sh start|stop DIR}
dir=${2:?usage: slurm.sh start|stop DIR}
as_root=""
[ "$(id -u)" -eq 0 ] || as_root="sudo"

case "$action" in
start)
    for tool in slurmctld slurmd munged; do
        command -v "$tool" >/dev/null || PATH="$PATH:/usr/sbin"
        command -v "$tool" >/dev/null || { echo "$tool not found: apt-get install slurm-wlm munge" >&2; exit 1; }
    done
    mkdir -p "$dir/state" "$dir/spool" "$dir/log"
    # munge: one daemon per machine, shared by every cluster started here.
    if ! munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then
        $as_root mkdir -p /run/munge
        $as_root chown munge:munge /run/munge
        [ -s /etc/munge/munge.key ] || $as_root mungekey --create >/dev/null 2>&1 || $as_root /usr/sbin/create-munge-key -f >/dev/null
        $as_root su -s /bin/bash munge -c /usr/sbin/munged
        for _ in $(seq 50); do munge -n 2>/dev/null | unmunge >/dev/null 2>&1 && break; sleep 0.1; done
    fi
    host=$(hostname -s)
    read -r ctld_port slurmd_port < <(python3 -c 'import socket
ports=[]
for _ in range(2):
    s=socket.socket(); s.bind(("127.0.0.1",0)); ports.append(s.getsockname()[1]); s.close()
print(*ports)')
    cat > "$dir/slurm.conf" <<CONF
ClusterName=thawtest
SlurmctldHost=$host(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd.log
SlurmctldPort=$ctld_port
SlurmdPort=$slurmd_port
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
MpiDefault=none
JobAcctGatherType=jobacct_gather/none
KillWait=10
NodeName=$host NodeAddr=127.0.0.1 CPUs=$(nproc) RealMemory=8000 State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP OverSubscribe=FORCE:4
CONF
    export SLURM_CONF="$dir/slurm.conf"
    $as_root env SLURM_CONF="$SLURM_CONF" slurmctld -f "$SLURM_CONF"
    $as_root env SLURM_CONF="$SLURM_CONF" slurmd -f "$SLURM_CONF"
    for _ in $(seq 100); do
        sinfo -h -o %t 2>/dev/null | grep -qE '^(idle|mix|alloc)' && break
        sleep 0.2
    done
    sinfo -h -o %t | grep -qE '^(idle|mix|alloc)' || { echo "slurm did not come up; logs in $dir/log" >&2; exit 1; }
    echo "SLURM_CONF=$SLURM_CONF"
    ;;
stop)
    for pid in "$dir/slurmd.pid" "$dir/slurmctld.pid"; do
        [ -s "$pid" ] && $as_root kill "$(cat "$pid")" 2>/dev/null || true
    done
    ;;
*)
    echo "usage: slurm.sh start|stop DIR" >&2
    exit 2
    ;;
esac
