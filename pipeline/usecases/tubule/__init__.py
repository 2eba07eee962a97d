"""Use case 3, tubule segmentation (3-tubule/ of the original): a package of one job per module.

- :mod:`.images`: annotation-driven image list, "patient" groups, benign/malignant lists, list checks;
- :mod:`.features`: colour + GLCM pixel features and the pixel classifier (LDA, or naive Bayes);
- :mod:`.mining`: the weighted sampler with clearing (hard positives and negatives);
- :mod:`.sampling`: step 1 per image (resize, pad, mining, patches) and over the data set;
- :mod:`.lists`: the old convert_imageset's reading of names with spaces (an option);
- :mod:`.scores`: pixel and per-tubule scores (invented; the original shipped none);
- :mod:`.demo`: the generated gland cohort;
- :mod:`.regress`: the released fold models on given images;
- :mod:`.usecase`: the plug-in (:class:`Tubule`).
"""

from pipeline.usecases.tubule.usecase import Tubule

__all__ = ["Tubule"]
