"""Step 4 set-up: solver, train/test net, deploy net and job scripts from Jinja templates.

The original filled Python %-placeholders (%(kfoldi)d, %(numiter)d) in BASE-*.prototxt files;
here prototxt_templates/*.j2 are rendered per fold (and per level) with the published values as
defaults, and job_templates/ gives each fold its job scripts. Every rendered prototxt is parsed
with caffe_pb2 before it is written.
"""

from __future__ import annotations

import logging
import shlex
import stat
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

import jinja2

from pipeline import JOB_TEMPLATE_DIR, REPO_ROOT, TEMPLATE_DIR, artefacts, atomic
from pipeline.caffe_env import caffe_pb2

log = logging.getLogger(__name__)


@dataclass
class SolverParams:
    """Solver values; defaults are the published ones (BASE-alexnet_solver_ada.prototxt)."""

    base_lr: float = 0.001
    weight_decay: float = 0.004
    max_iter: int = 600000
    test_interval: int = 10000
    snapshot: int = 10000
    display: int = 1000
    random_seed: int | None = None
    #: Learning-rate schedule: "fixed" (the template, published default) or "step" (lr = base_lr *
    #: gamma ^ floor(iter / stepsize)), what the released solverstates of use cases 1, 6 and 7 show
    #: (current_step 5 at 600,000; their gamma is not recorded).
    lr_policy: str = "fixed"
    stepsize: int | None = None
    gamma: float | None = None

    def __post_init__(self) -> None:
        if self.lr_policy not in ("fixed", "step"):
            raise ValueError(f"--lr-policy {self.lr_policy}: choose fixed or step")
        if self.lr_policy == "step" and (not self.stepsize or self.stepsize < 1 or self.gamma is None):
            raise ValueError("--lr-policy step needs --stepsize N (>= 1) and --gamma G")


@dataclass
class FoldFiles:
    """Paths of one fold's rendered files."""

    solver: Path
    train_test: Path
    deploy: Path
    job: Path
    pbs: Path
    snapshot_prefix: Path


def environment() -> jinja2.Environment:
    """Jinja environment over prototxt_templates/ and job_templates/ that fails on undefined variables,
    with a ``q`` filter quoting a shell word (every path in a job script goes through it)."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader([str(TEMPLATE_DIR), str(JOB_TEMPLATE_DIR)]),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        autoescape=False,
    )
    env.filters["q"] = lambda v: shlex.quote(str(v))
    return env


def render(name: str, **context) -> str:
    """Render one template with the given variables."""
    return environment().get_template(name).render(**context).strip() + "\n"


def parse_check(text: str, message: str, origin: str):
    """Parse prototxt text into a caffe_pb2 message (``NetParameter``/``SolverParameter``)."""
    from google.protobuf import text_format

    msg = getattr(caffe_pb2(), message)()
    try:
        text_format.Merge(text, msg)
    except text_format.ParseError as exc:
        raise ValueError(f"{origin}: rendered template does not parse as {message}: {exc}") from exc
    return msg


def test_iter_for(n_test_lines: int, batch_size: int = 128) -> int:
    """floor(test lines / batch), the original's test_iter; at least 1 so Caffe can run a test."""
    n = n_test_lines // batch_size
    if n == 0:
        log.warning("test list has %d lines, fewer than one batch of %d: test_iter set to 1", n_test_lines, batch_size)
    return max(1, n)


def deploy_text(dropout: bool = False, num_output: int = 2, batch: int = 10) -> str:
    """The deploy net (input batch x 3 x 32 x 32, softmax "prob")."""
    text = render("deploy.prototxt.j2", dropout=dropout, num_output=num_output, batch=batch)
    parse_check(text, "NetParameter", "deploy.prototxt.j2")
    return text


def write_deploy(path: Path, dropout: bool = False, num_output: int = 2, batch: int = 10) -> Path:
    """Render the deploy net to ``path`` (atomically)."""
    atomic.write_text(Path(path), deploy_text(dropout, num_output, batch))
    return Path(path)


def render_fold(
    out_dir: Path,
    fold: str,
    train_db: Path,
    test_db: Path | None,
    mean_file: Path,
    n_test_lines: int,
    gpu: bool = False,
    dropout: bool = False,
    num_output: int = 2,
    batch_size: int = 128,
    solver: SolverParams | None = None,
    snapshot_name: str | None = None,
    file_prefix: str | None = None,
) -> FoldFiles:
    """Render solver, train/test net, deploy net and job scripts for one fold into ``out_dir``.

    ``fold`` is the fold's name ("1", or "1_2" for fold 1 level 2). File names follow the original:
    ``<prefix>-alexnet_solver_ada.prototxt``, ``<prefix>-alexnet_traing_32w_db.prototxt`` (prefix
    ``file_prefix``, default the fold: RADHicaL's are "1-2") and the snapshot prefix
    ``<fold>_caffenet_train_w32`` (``snapshot_name`` overrides the part after "<fold>_"). Paths
    inside the files are absolute.
    """
    solver = solver or SolverParams()
    out_dir = Path(out_dir).resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    files = file_prefix or fold
    net_path = out_dir / artefacts.net(files, dropout)
    solver_path = out_dir / artefacts.solver(files)
    deploy_path = out_dir / artefacts.deploy(dropout)
    prefix = out_dir / artefacts.snapshot_prefix(fold, snapshot_name or artefacts.SNAPSHOT)
    test_iter = test_iter_for(n_test_lines, batch_size) if test_db else 0

    net_text = render(
        "train_test.prototxt.j2",
        train_db=str(Path(train_db).resolve()),
        test_db=str(Path(test_db).resolve()) if test_db else "",
        mean_file=str(Path(mean_file).resolve()),
        batch_size=batch_size,
        test_batch_size=batch_size,
        dropout=dropout,
        num_output=num_output,
    )
    parse_check(net_text, "NetParameter", str(net_path))
    # without a test net the template leaves out test_iter/test_interval: Caffe must not be told to test
    solver_text = render(
        "solver.prototxt.j2",
        net=str(net_path),
        test_iter=test_iter,
        gpu=gpu,
        snapshot_prefix=str(prefix),
        **asdict(solver),
    )
    parse_check(solver_text, "SolverParameter", str(solver_path))

    atomic.write_text(net_path, net_text)
    atomic.write_text(solver_path, solver_text)
    write_deploy(deploy_path, dropout=dropout, num_output=num_output)
    job = out_dir / f"{files}-train_job.sh"
    atomic.write_text(
        job,
        render(
            "train_job.sh.j2",
            fold=fold,
            level=None,
            workdir=str(out_dir),
            repo=str(REPO_ROOT),
            python=sys.executable,
            solver=str(solver_path),
            gpu=gpu,
        ),
    )
    job.chmod(job.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    pbs = out_dir / f"{files}-qsub.pbs"
    atomic.write_text(
        pbs, render("qsub.pbs.j2", **qsub_fields(fold, gpu), fold=files, workdir=str(out_dir), email="", queue="")
    )
    log.info(
        "rendered fold %s into %s (test_iter %d, max_iter %d, %s)",
        fold,
        out_dir,
        test_iter,
        solver.max_iter,
        "GPU" if gpu else "CPU",
    )
    return FoldFiles(
        solver=solver_path, train_test=net_path, deploy=deploy_path, job=job, pbs=pbs, snapshot_prefix=prefix
    )


def qsub_fields(fold: str, gpu: bool, walltime: str = "320:00:00") -> dict[str, str]:
    """The original's BASE-qsub.pbs fields for fold ``fold``: walltime 320 h, one node and core (and
    one GPU, exclusive_process), job name ``<fold>_TASK``, output ``<fold>_TASK_output.out``."""
    return {
        "walltime": walltime,
        "nodes": "nodes=1:ppn=1" + (":gpus=1:exclusive_process" if gpu else ""),
        "job_name": f"{fold}_TASK",
        "output": f"{fold}_TASK_output.out",
    }


def write_if_changed(path: Path, text: str) -> Path:
    """Write ``text`` atomically unless the file already holds exactly it (cached renderings never go stale)."""
    path = Path(path)
    if not path.is_file() or path.read_text() != text:
        atomic.write_text(path, text)
    return path


def deploy_in(net_dir: Path, dropout: bool = False, num_output: int = 2) -> Path:
    """The deploy net rendered from the template into ``net_dir`` (a run's work folder), as
    ``deploy_train32[_dropout]_<num_output>.prototxt``; re-rendered whenever the template's output changes."""
    path = Path(net_dir) / f"deploy_train32{'_dropout' if dropout else ''}_{num_output}.prototxt"
    return write_if_changed(path, deploy_text(dropout=dropout, num_output=num_output))
