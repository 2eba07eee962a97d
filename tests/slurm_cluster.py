"""A private single-node SLURM cluster for the tests: Debian's slurmctld, slurmd and munged.

:func:`start` writes a slurm.conf for one node on 127.0.0.1 into a folder of its own (state, spool,
logs, pid files, a MUNGE key; the MUNGE socket in a folder of its own under /tmp, as munged wants every
folder above it searchable by all), with free loopback ports; the daemons run as the user
running the tests (SlurmUser and SlurmdUser), bind to 127.0.0.1 only (CommunicationParameters
NoInAddrAny, NoCtldInAddrAny), track processes with proctrack/linuxproc and use no cgroup plugin.
It starts munged, slurmctld and slurmd in the foreground as children of the test process, waits
until ``sinfo`` shows the node idle, and :meth:`Cluster.stop` ends exactly those three processes
(by their pids). Client commands find the cluster through ``SLURM_CONF`` (:attr:`Cluster.env`).
"""

from __future__ import annotations

import getpass
import os
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

DAEMONS = ("munged", "slurmctld", "slurmd")
CLIENTS = ("sbatch", "squeue", "sinfo", "scancel")
NODE = "jpi-node"
PARTITION = "jpi"


def missing_tools() -> list[str]:
    """The daemons and client commands not installed (``make setup-slurm`` installs them)."""
    return [t for t in DAEMONS + CLIENTS if shutil.which(t) is None and not Path("/usr/sbin", t).is_file()]


def pid_alive(pid: int) -> bool:
    """Whether process ``pid`` exists and is not a zombie."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def _tool(name: str) -> str:
    return shutil.which(name) or str(Path("/usr/sbin", name))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def slurm_conf(root: Path, user: str, cpus: int, ctld_port: int, slurmd_port: int, socket_path: Path) -> str:
    """The slurm.conf text of the one-node cluster under ``root``."""
    return f"""# private one-node cluster of the tests (tests/slurm_cluster.py)
ClusterName=jpitest
SlurmctldHost=localhost(127.0.0.1)
SlurmctldPort={ctld_port}
SlurmdPort={slurmd_port}
SlurmUser={user}
SlurmdUser={user}
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket={socket_path}
CommunicationParameters=NoInAddrAny,NoCtldInAddrAny
StateSaveLocation={root}/state
SlurmdSpoolDir={root}/spool
SlurmctldPidFile={root}/run/slurmctld.pid
SlurmdPidFile={root}/run/slurmd.pid
SlurmctldLogFile={root}/log/slurmctld.log
SlurmdLogFile={root}/log/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
MpiDefault=none
SchedulerType=sched/builtin
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
ReturnToService=2
MinJobAge=3600
NodeName={NODE} NodeAddr=127.0.0.1 NodeHostname=localhost CPUs={cpus} State=UNKNOWN
PartitionName={PARTITION} Nodes={NODE} Default=YES MaxTime=INFINITE State=UP
"""


@dataclass
class Cluster:
    """A running cluster: its folder, configuration, and the daemons this process started."""

    root: Path
    conf: Path
    sock_dir: Path
    procs: dict[str, subprocess.Popen] = field(default_factory=dict)

    @property
    def env(self) -> dict[str, str]:
        """The environment of client commands (sbatch, squeue...) talking to this cluster."""
        return {**os.environ, "SLURM_CONF": str(self.conf)}

    def run(self, *argv: str, check: bool = True) -> subprocess.CompletedProcess:
        """Run a client command against this cluster."""
        return subprocess.run(
            [_tool(argv[0]), *argv[1:]], env=self.env, capture_output=True, text=True, check=check, timeout=60
        )

    def logs(self) -> str:
        """The daemons' log tails (for failure messages)."""
        out = []
        for f in sorted((self.root / "log").glob("*")):
            out.append(f"--- {f.name}\n" + "\n".join(f.read_text(errors="replace").splitlines()[-15:]))
        return "\n".join(out)

    def stop(self) -> None:
        """End the daemons this process started (by pid; slurmd first, munged last)."""
        for name in reversed(DAEMONS):
            proc = self.procs.pop(name, None)
            if proc is None or proc.poll() is not None:
                continue
            proc.terminate()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
        shutil.rmtree(self.sock_dir, ignore_errors=True)


def start(root: Path, timeout: float = 90.0) -> Cluster:
    """Configure and start the cluster under ``root``; RuntimeError with the daemons' logs if the
    node is not idle within ``timeout`` seconds (the daemons started are stopped first)."""
    root = Path(root)
    for d in ("state", "spool", "log", "run", "munge"):
        (root / d).mkdir(parents=True, exist_ok=True)
    (root / "munge").chmod(0o700)
    # munged wants every folder above its socket searchable by all (pytest's temporary folders are
    # private): the socket gets a folder of its own in the system's temporary folder, removed by stop()
    sock_dir = Path(tempfile.mkdtemp(prefix="jpi-munge-"))
    sock_dir.chmod(0o755)
    key = root / "munge" / "munge.key"
    key.write_bytes(os.urandom(1024))
    key.chmod(0o400)
    sock = sock_dir / "munge.socket"
    conf = root / "slurm.conf"
    conf.write_text(slurm_conf(root, getpass.getuser(), os.cpu_count() or 1, _free_port(), _free_port(), sock))
    cluster = Cluster(root, conf, sock_dir)
    commands = {
        "munged": [
            _tool("munged"),
            "--foreground",
            f"--socket={sock}",
            f"--key-file={key}",
            f"--log-file={root / 'log' / 'munged.log'}",
            f"--pid-file={root / 'run' / 'munged.pid'}",
            f"--seed-file={root / 'munge' / 'munged.seed'}",
        ],
        "slurmctld": [_tool("slurmctld"), "-D", "-i", "-f", str(conf)],
        "slurmd": [_tool("slurmd"), "-D", "-f", str(conf), "-N", NODE],
    }
    try:
        for name in DAEMONS:
            with open(root / "log" / f"{name}.stdout", "w") as out:
                cluster.procs[name] = subprocess.Popen(
                    commands[name], stdout=out, stderr=subprocess.STDOUT, env=cluster.env, start_new_session=True
                )
            if name == "munged":
                _wait(lambda: sock.exists(), 20, "munged did not create its socket", cluster)
        _wait(
            lambda: cluster.run("sinfo", "--noheader", "--format=%T", check=False).stdout.strip() == "idle",
            timeout,
            f"node {NODE} not idle",
            cluster,
        )
    except BaseException:
        cluster.stop()
        raise
    return cluster


def _wait(ok, timeout: float, what: str, cluster: Cluster) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        for name, proc in cluster.procs.items():
            if proc.poll() is not None:
                raise RuntimeError(
                    f"{name} ended (exit {proc.returncode}) while starting the test cluster:\n{cluster.logs()}"
                )
        if ok():
            return
        time.sleep(0.5)
    raise RuntimeError(f"{what} after {timeout:.0f} s:\n{cluster.logs()}")
