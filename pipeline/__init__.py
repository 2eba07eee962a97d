"""Caffe-faithful reproduction of Janowczyk & Madabhushi's deep-learning tutorials for digital pathology.

One module per stage (sampling, lists, folds, databases, templates, training, inference, crossval,
metrics, regression, data); use cases plug in from :mod:`pipeline.usecases` (its ``base`` module
says how). ``python -m pipeline`` is the command line (:mod:`pipeline.cli`).
"""

from pathlib import Path

__version__ = "0.1.0"

#: Root of the checkout (the folder holding pipeline/, prototxt_templates/, docker/).
REPO_ROOT = Path(__file__).resolve().parent.parent
#: Jinja templates of solver and nets.
TEMPLATE_DIR = REPO_ROOT / "prototxt_templates"
#: Jinja templates of job scripts: per-fold training (train_job.sh, the original's qsub.pbs) and the
#: SLURM / PBS / local scripts of ``python -m pipeline submit``.
JOB_TEMPLATE_DIR = REPO_ROOT / "job_templates"
#: Data files shipped with the package (split lists, checksum tables).
RESOURCE_DIR = Path(__file__).resolve().parent / "resources"
