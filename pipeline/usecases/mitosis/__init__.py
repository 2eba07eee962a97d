"""Use case 5, mitosis detection in two training stages (``DL tutorial Code/5-mitosis``).

One job a module: ``sampling`` (frames, blue ratio, patients, stage-1 patches), ``stage2``
(negatives by stage-1 probability), ``detection`` (peaks, matching, scores: invented), ``cohort``
(the generated demo cohort), ``runner`` (the two stages as recipes), ``regression`` (the released
second-stage models on given frames), ``usecase`` (the registered plug-in).
"""

from pipeline.usecases.mitosis.usecase import Mitosis

__all__ = ["Mitosis"]
