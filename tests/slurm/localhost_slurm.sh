#!/usr/bin/env bash
# A single-node SLURM 22.05 on localhost for tests/slurm/test_slurm.py (Debian's slurm-wlm and munge, run as root).
#
#   tests/slurm/localhost_slurm.sh start   install the packages if missing, write the config, start the daemons
#   tests/slurm/localhost_slurm.sh stop    cancel every job of this test cluster, stop what `start` started
#
# Exit status of `start`: 0 ready; 77 this machine does not allow it (not root, no apt-get, or a SLURM config that
# is not ours); anything else is an error. Every external command runs under `timeout`; `start` is idempotent and
# takes a few seconds once the packages are installed.
#
# The cluster: partitions `cpu` (default) and `gpu` on the one node `localhost`, a fake GPU gres (SLURM 22.05 drains
# a node whose GPU gres has no device file, so /dev/nvidia0 is created with mknod when absent, and removed on stop),
# no accounting daemon (sacct does not work: status queries must use squeue, and MinJobAge keeps finished jobs
# visible to squeue and `scontrol show job` for an hour), and jobcomp/filetxt, which logs every finished job with
# its partition to $STATE/jobcomp.log. Without slurmdbd the GPU shows in `scontrol show job -d` (JOB_GRES,
# TresPerJob), not in the TRES strings.
set -euo pipefail

STATE="${GENOLM_SLURM_STATE:-/var/tmp/genolm-slurm}"
CONF=/etc/slurm/slurm.conf
GRES=/etc/slurm/gres.conf
MARKER="# genolm-localhost-slurm"
APT_TIMEOUT="${GENOLM_SLURM_APT_TIMEOUT:-600}"

log() { echo "localhost_slurm: $*" >&2; }
unavailable() {
    log "$*"
    exit 77
}

ours() { [[ ! -e "$1" ]] || grep -qF "$MARKER" "$1"; }

wait_for() { # seconds, then a command to retry every half second until it succeeds
    local deadline=$((SECONDS + $1))
    shift
    until "$@" >/dev/null 2>&1; do
        ((SECONDS < deadline)) || return 1
        sleep 0.5
    done
}

install_packages() {
    if command -v slurmctld >/dev/null && command -v slurmd >/dev/null && command -v sbatch >/dev/null &&
        command -v munged >/dev/null; then
        return 0
    fi
    command -v apt-get >/dev/null || unavailable "slurm-wlm is not installed and apt-get is not available"
    log "installing slurm-wlm and munge with apt-get"
    # Package scripts must not start services (there is no init system here): a policy-rc.d that says no, while
    # installing, when the machine has none.
    local policy=/usr/sbin/policy-rc.d created_policy=0
    if [[ ! -e $policy ]]; then
        printf '#!/bin/sh\nexit 101\n' >"$policy"
        chmod +x "$policy"
        created_policy=1
    fi
    local status=0
    export DEBIAN_FRONTEND=noninteractive
    timeout "$APT_TIMEOUT" apt-get update -q >&2 || status=$?
    if ((status == 0)); then
        timeout "$APT_TIMEOUT" apt-get install -y -q --no-install-recommends slurm-wlm munge >&2 || status=$?
    fi
    ((created_policy)) && rm -f "$policy"
    if ((status != 0)); then
        log "apt-get failed (exit $status)"
        exit 1
    fi
}

start_munge() {
    if timeout 10 munge -n 2>/dev/null | timeout 10 unmunge >/dev/null 2>&1; then
        return 0 # a munged already answers
    fi
    if [[ ! -s /etc/munge/munge.key ]]; then
        timeout 30 runuser -u munge -- mungekey --create --keyfile=/etc/munge/munge.key
    fi
    install -d -o munge -g munge -m 0755 /run/munge
    timeout 30 runuser -u munge -- munged
    touch "$STATE/started-munged"
    wait_for 20 bash -c 'munge -n | unmunge' || {
        log "munged did not start"
        exit 1
    }
}

write_config() {
    local cpus
    cpus=$(nproc)
    mkdir -p /etc/slurm "$STATE/ctld" "$STATE/d"
    cat >"$CONF" <<EOF
$MARKER: written by tests/slurm/localhost_slurm.sh, removed by its \`stop\`
ClusterName=genolmtest
SlurmctldHost=localhost
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
StateSaveLocation=$STATE/ctld
SlurmdSpoolDir=$STATE/d
SlurmctldPidFile=$STATE/slurmctld.pid
SlurmdPidFile=$STATE/slurmd.pid
SlurmctldLogFile=$STATE/slurmctld.log
SlurmdLogFile=$STATE/slurmd.log
MpiDefault=none
MailProg=/bin/true
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=1000
GresTypes=gpu
ReturnToService=2
MinJobAge=3600
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/filetxt
JobCompLoc=$STATE/jobcomp.log
# The node declares more memory than a CI runner has, so that the profile's site-sized requests (16 GB for
# training) can be scheduled; nothing enforces memory here (task/none).
SlurmdParameters=config_overrides
NodeName=localhost NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=65536 Gres=gpu:testgpu:1 State=UNKNOWN
PartitionName=cpu Nodes=localhost Default=YES MaxTime=INFINITE State=UP
PartitionName=gpu Nodes=localhost MaxTime=INFINITE State=UP
EOF
    cat >"$GRES" <<EOF
$MARKER
NodeName=localhost Name=gpu Type=testgpu File=/dev/nvidia0
EOF
    if [[ ! -e /dev/nvidia0 ]]; then
        mknod /dev/nvidia0 c 195 0
        touch "$STATE/created-dev-nvidia0"
    fi
}

running() { [[ -s "$1" ]] && kill -0 "$(cat "$1")" 2>/dev/null; }

start() {
    [[ $(id -u) == 0 ]] || unavailable "needs root (it installs packages and starts slurmctld, slurmd and munged)"
    ours "$CONF" || unavailable "$CONF exists and was not written by this script: not touching a real SLURM"
    if ! running "$STATE/slurmctld.pid" && grep -qx slurmctld /proc/[0-9]*/comm 2>/dev/null; then
        unavailable "a slurmctld that this script did not start is running"
    fi
    install_packages
    mkdir -p "$STATE"
    start_munge
    write_config
    if running "$STATE/slurmctld.pid"; then
        timeout 20 scontrol reconfigure >&2
    else
        timeout 30 slurmctld -c # -c: a clean start, no jobs or node states from an earlier run
    fi
    wait_for 30 scontrol ping || {
        log "slurmctld does not answer; its log:"
        tail -n 30 "$STATE/slurmctld.log" >&2 || true
        exit 1
    }
    running "$STATE/slurmd.pid" || timeout 30 slurmd -N localhost
    if ! wait_for 60 bash -c '[[ $(sinfo -h -n localhost -o %t | sort -u) == idle* ]]'; then
        # a node left down or drained by an earlier run comes back once its config is right
        timeout 10 scontrol update NodeName=localhost State=RESUME >&2 || true
        wait_for 30 bash -c '[[ $(sinfo -h -n localhost -o %t | sort -u) == idle* ]]' || {
            log "node localhost is not idle:"
            timeout 10 scontrol show node localhost >&2 || true
            tail -n 30 "$STATE/slurmd.log" >&2 || true
            exit 1
        }
    fi
    timeout 10 sinfo -o '%P %a %D %t %c %m %G' >&2
}

stop_daemon() { # pid file, name
    running "$1" || return 0
    local pid
    pid=$(cat "$1")
    kill "$pid"
    wait_for 30 bash -c "! kill -0 $pid" || kill -9 "$pid" 2>/dev/null || true
}

stop() {
    if running "$STATE/slurmctld.pid"; then
        # every job on this private cluster was submitted by the tests
        timeout 20 bash -c 'squeue -h -o %i | xargs -r scancel' >&2 || true
        wait_for 60 bash -c '[[ -z $(squeue -h -t running,pending,completing -o %i) ]]' ||
            log "jobs still listed after 60 s"
    fi
    stop_daemon "$STATE/slurmd.pid"
    stop_daemon "$STATE/slurmctld.pid"
    if [[ -e "$STATE/started-munged" ]]; then
        stop_daemon /run/munge/munged.pid
        rm -f "$STATE/started-munged"
    fi
    if [[ -e "$STATE/created-dev-nvidia0" ]]; then
        rm -f /dev/nvidia0 "$STATE/created-dev-nvidia0"
    fi
    ours "$CONF" && rm -f "$CONF"
    ours "$GRES" && rm -f "$GRES"
    return 0
}

case "${1:-}" in
start) start ;;
stop) stop ;;
*)
    echo "usage: $0 start|stop" >&2
    exit 2
    ;;
esac
