"""pipeline.detection's sorting of detections for the report pictures, on a case worked by hand."""

from __future__ import annotations

import numpy as np

from pipeline import detection


def test_sort_centres_by_hand():
    # scale 0.5: output pixel x sits at original u = (x + 0.5) / 0.5 - 0.5 = 2x + 0.5
    # peaks (10, 10) -> (20.5, 20.5): 0.71 from the true (20, 20), matched within radius 3;
    # peak (40, 0) -> (80.5, 0.5): no true centre within 3, a false alarm;
    # the true (100, 100) is missed; shown at the output scale: (100 + 0.5) * 0.5 - 0.5 = 49.75
    peaks = np.array([[10, 10], [40, 0]])
    truth = np.array([[20, 20], [100, 100]])
    s = detection.sort_centres(peaks, truth, 0.5, 3.0)
    assert s["pred_matched"].tolist() == [[10, 10]] and s["pred_false"].tolist() == [[40, 0]]
    assert s["truth_matched"].tolist() == [[9.75, 9.75]] and s["truth_missed"].tolist() == [[49.75, 49.75]]
    # a radius too small for the 0.71 offset: nothing matches
    none = detection.sort_centres(peaks, truth, 0.5, 0.5)
    assert len(none["pred_matched"]) == 0 and len(none["truth_missed"]) == 2
