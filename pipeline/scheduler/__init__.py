"""Cluster jobs: a use-case run as SLURM job arrays, PBS jobs, or local runs of the same scripts.

- :mod:`~pipeline.scheduler.plan`: the steps of a run (job arrays, dependencies, done tasks); pure.
- :mod:`~pipeline.scheduler.backends`: sbatch/squeue/scancel, qsub/qstat/qdel, local runs.
- :mod:`~pipeline.scheduler.submit`: ``python -m pipeline submit``, submitting only what is missing.
- :mod:`~pipeline.scheduler.status`: ``python -m pipeline status``.
- :mod:`~pipeline.scheduler.records`: what WORK/jobs/ records.
"""
