"""``python -m pipeline doctor``: versions and paths of Caffe, pycaffe and the dependencies."""

from __future__ import annotations

from pipeline import doctor


def add(sub) -> None:
    d = sub.add_parser("doctor", help="versions and paths of Caffe, pycaffe and dependencies")
    d.add_argument("--quiet", action="store_true", help="one line unless something is missing")
    d.set_defaults(func=run)


def run(a) -> int:
    return doctor.main(quiet=a.quiet)
