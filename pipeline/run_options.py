"""The options every run shares, declared once: as a typed, frozen config and as command-line options.

A use case's config (``crossval.Config``, use case 6's, RADHicaL's, the U-Net's...) is a frozen
dataclass deriving from :class:`RunOptions`, with its own options beside these. The command line
builds a config from its arguments (:func:`add_run_arguments` declares them, :meth:`RunOptions.from_args`
and the use case's ``config`` read them); the library runs a config. Calling a use case from
Python needs no argparse::

    from pipeline import crossval
    from pipeline.usecases import epi

    cfg = crossval.Config(data=Path("epi"), work=Path("runs/epi"), params=epi.Params(max_positive=2000), gpu=True)
    summary = crossval.run(epi.Epithelium(), cfg)  # every stage; or stages=("patches", "folds")

Options (command line, field, default): ``--work`` work, ``--iter`` iterations (600000, published),
``--seed`` seed (1), ``-j/--jobs`` jobs (1), ``--gpu`` gpu, ``--caffe-shuffle`` caffe_shuffle
(convert_imageset -shuffle, unseeded, as the original), ``--infer-mode`` infer_mode (exact),
``--test-interval/--snapshot/--display`` and ``--lr-policy/--stepsize/--gamma`` solver, ``--force``
force. ``show_progress`` (progress bars) has no option.
"""

from __future__ import annotations

import argparse
import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from pipeline.inference import ENGINES
from pipeline.templates import SolverParams

__all__ = ["RunOptions", "add_run_arguments", "add_solver_arguments", "solver_from_args"]

T = TypeVar("T", bound="RunOptions")

#: The shared options' fields, as ``from_args`` reads them from an argparse namespace.
FIELDS = ("work", "iterations", "seed", "jobs", "gpu", "caffe_shuffle", "infer_mode", "force")


@dataclass(frozen=True, kw_only=True)
class RunOptions:
    """What every run is told: where, how long, which seed, on what hardware, with which solver."""

    work: Path
    iterations: int = 600000
    seed: int | None = 1
    jobs: int | None = 1
    gpu: bool = False
    caffe_shuffle: bool = False
    infer_mode: str = "exact"
    solver: SolverParams = field(default_factory=SolverParams)
    force: bool = False  # recompute stages whose recipe changed instead of refusing
    show_progress: bool = True

    def __post_init__(self) -> None:
        object.__setattr__(self, "work", Path(self.work))
        if self.infer_mode not in ENGINES:
            raise ValueError(f"infer_mode {self.infer_mode!r} is not one of {', '.join(sorted(ENGINES))}")

    @classmethod
    def shared_from_args(cls, args: argparse.Namespace) -> dict[str, Any]:
        """The shared fields an argparse namespace holds (a use case's command may lack some)."""
        out = {k: getattr(args, k) for k in FIELDS if hasattr(args, k)}
        if hasattr(args, "iterations"):
            out["solver"] = solver_from_args(args)
        return out

    @classmethod
    def from_args(cls: type[T], args: argparse.Namespace, **more: Any) -> T:
        """This config from the shared options in ``args`` and ``more`` (the use case's own)."""
        return cls(**{**cls.shared_from_args(args), **more})

    def solver_params(self) -> SolverParams:
        """The solver values of the run: :attr:`solver` with its iterations, and its seed as Caffe's
        ``random_seed`` unless the solver names one."""
        seed = self.solver.random_seed if self.solver.random_seed is not None else self.seed
        return dataclasses.replace(self.solver, max_iter=self.iterations, random_seed=seed)

    def replace(self: T, **changes: Any) -> T:
        """A copy with ``changes`` (configs are frozen)."""
        return dataclasses.replace(self, **changes)


def add_solver_arguments(parser: argparse.ArgumentParser) -> None:
    """``--lr-policy fixed|step``, ``--stepsize``, ``--gamma``: the learning-rate schedule (default the
    template's ``fixed``; the released runs of use cases 1, 6 and 7 were stepped, gamma unknown)."""
    parser.add_argument(
        "--lr-policy",
        default="fixed",
        choices=("fixed", "step"),
        help="learning-rate schedule: fixed (the solver template, default) or step (base_lr * gamma^floor(iter/stepsize); "
        "the released solverstates of use cases 1, 6, 7 show current_step 5 at 600000, gamma unknown)",
    )
    parser.add_argument(
        "--stepsize", type=int, help="--lr-policy step: iterations per step (100000..119999 fit current_step 5)"
    )
    parser.add_argument(
        "--gamma", type=float, help="--lr-policy step: factor per step (not recorded; Caffe's usual 0.1)"
    )


def solver_from_args(args: argparse.Namespace) -> SolverParams:
    """SolverParams of ``--iter`` and the solver intervals given (``--test-interval``, ``--snapshot``, ``--display``)."""
    intervals = {k: getattr(args, k) for k in ("test_interval", "snapshot", "display") if getattr(args, k, None)}
    return SolverParams(
        max_iter=args.iterations,
        lr_policy=getattr(args, "lr_policy", "fixed"),
        stepsize=getattr(args, "stepsize", None),
        gamma=getattr(args, "gamma", None),
        **intervals,
    )


def add_run_arguments(
    parser: argparse.ArgumentParser,
    *,
    work: Path | None,
    iterations: int,
    iterations_help: str = "training iterations (published 600000)",
    seed_help: str = "folds, centre sampling, list shuffle, Caffe random_seed",
    jobs_help: str | None = "folds trained at the same time",
    jobs_default: int | None = 1,
    infer_mode: str | None = "exact",
    infer_help: str = "step-5 engine (exact reproduces the original's numbers; fcn is fast)",
    caffe_shuffle: bool = True,
    intervals: tuple[int | None, int | None, int | None] | None = (None, None, None),
    intervals_help: tuple[str, str, str] = ("", "", ""),
    schedule: bool = True,
) -> None:
    """Declare the shared options on ``parser`` with a command's defaults.

    ``work``: the default work folder (None: ``--work`` is required); ``iterations``: the default
    ``--iter``; ``jobs_help`` None: no ``-j/--jobs``; ``infer_mode`` None: no ``--infer-mode``;
    ``intervals``: defaults of ``--test-interval``, ``--snapshot``, ``--display`` (None: no such
    options); ``schedule``: ``--lr-policy/--stepsize/--gamma``.
    """
    parser.add_argument("--work", type=Path, default=work, required=work is None, help="work folder")
    parser.add_argument("--iter", dest="iterations", type=int, default=iterations, help=iterations_help)
    parser.add_argument("--seed", type=int, default=1, help=seed_help)
    if jobs_help is not None:
        parser.add_argument("-j", "--jobs", type=int, default=jobs_default, help=jobs_help)
    parser.add_argument("--gpu", action="store_true", help="train and infer on the GPU")
    if caffe_shuffle:
        parser.add_argument(
            "--caffe-shuffle", action="store_true", help="convert_imageset -shuffle (unseeded, as the original)"
        )
    if infer_mode is not None:
        parser.add_argument("--infer-mode", default=infer_mode, choices=sorted(ENGINES), help=infer_help)
    if intervals is not None:
        for name, default, text in zip(("--test-interval", "--snapshot", "--display"), intervals, intervals_help):
            parser.add_argument(name, type=int, default=default, help=text or None)
    if schedule:
        add_solver_arguments(parser)
