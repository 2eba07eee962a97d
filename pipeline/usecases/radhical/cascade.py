"""RADHicaL's cascade at inference (DLLevelTutorial/create_output_image_vector.py, nuclei_level.pbs).

Per image, from level 4 (the image divided by 10) to level 1 (the image itself): the image is read
as caffe.io.load_image and resized with caffe.io.resize_image to ``int(H / d) x int(W / d)``
(d = 10, 4, 2, 1; bilinear, no antialiasing: quirk Q5 against training's bicubic); level 4
computes every pixel (``-b``); each finer level computes only the pixels :mod:`.rules` selects from
the coarser level's output, with the thresholds of that coarser level (the published run: level 3
with .12/.16, level 2 with .18/.8267, level 1 with .733/.61). A computed pixel's window is
classified by the step-5 engine on exactly the selected pixels (``Options.mask``); the output is
``<stem>_<level>_prob.png``: computed pixels their probabilities, accepted ones (0, 0, 1), the rest
(1, 0, 0), saved as scipy.misc.imsave did (min-max rescaled, Q11) unless ``png="round"``.

Every level's outputs live in a folder named by a key of everything that determines them (the
level's model and mean, engine, rule, Q1 mode, PNG scaling, thresholds, and the coarser level's
key): a finished level is never recomputed, and a run with other options never reuses it.
Full runs (``-b`` at every level, for the threshold search) and the naive run (level 1, ``-b``)
share keys, so the naive run reuses the full level-1 outputs of the same images.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from pipeline import atomic, inference
from pipeline.download import sha256_of
from pipeline.imageio import load_image, write_png
from pipeline.inference.outputs import bytescale
from pipeline.usecases.radhical import rules
from pipeline.usecases.radhical.levels import DIVISORS, LEVELS, N_CLASSES

log = logging.getLogger(__name__)

PNG_MODES = ("minmax", "round")


# --------------------------------------------------------------------------- thresholds


@dataclass(frozen=True)
class Thresholds:
    """Per-level thresholds in get_masks order (index 0 = level 1): ``lower[l]`` on P1 + P2 and
    ``upper[l]`` on P2 of level l's output decide what level l - 1 computes; ``lower[0]`` is the
    final threshold on level 1's P1 (``upper[0]`` is unused, -1 in the original)."""

    lower: tuple[float, float, float, float]
    upper: tuple[float, float, float, float]

    def for_run_of(self, level: int) -> tuple[float, float]:
        """(lower, upper) a run of ``level`` (< 4) applies to the coarser level's output."""
        return self.lower[level], self.upper[level]

    def validate(self, origin: str = "thresholds") -> None:
        """Lower thresholds must lie in [0, 1]; upper ones in [0, 1] or above 1 ("accept none").

        Lower above upper is meaningful here (they threshold P1 + P2 and P2), as in the published
        level-1 run (.733 / .61), so it is allowed.
        """
        if len(self.lower) != 4 or len(self.upper) != 4:
            raise ValueError(f"{origin}: four lower and four upper thresholds (levels 1-4) are needed")
        bad = [f"lower(level {i + 1}) = {v}" for i, v in enumerate(self.lower) if not 0 <= v <= 1]
        bad += [f"upper(level {i + 1}) = {v}" for i, v in enumerate(self.upper) if i and v < 0]
        if bad:
            raise ValueError(
                f"{origin}: {', '.join(bad)} outside [0, 1] (an upper threshold may exceed 1: "
                "no pixel is then accepted without computing)"
            )

    @classmethod
    def parse(cls, lower: str, upper: str, origin: str = "--lower/--upper") -> "Thresholds":
        """From "L1,L2,L3,L4" and "U2,U3,U4" (the published: .5267,.733,.18,.12 and .61,.8267,.16)."""
        try:
            lo = tuple(float(v) for v in lower.split(","))
            up = tuple(float(v) for v in upper.split(","))
        except ValueError:
            raise ValueError(
                f"{origin}: thresholds must be comma-separated numbers, got {lower!r} / {upper!r}"
            ) from None
        if len(lo) != 4 or len(up) != 3:
            raise ValueError(f"{origin}: give --lower L1,L2,L3,L4 (4 values) and --upper U2,U3,U4 (3 values)")
        t = cls(lo, (-1.0,) + up)  # type: ignore[arg-type]
        t.validate(origin)
        return t

    def text(self) -> str:
        """ "L1,L2,L3,L4 / U2,U3,U4"."""
        return f"{','.join(f'{v:g}' for v in self.lower)} / {','.join(f'{v:g}' for v in self.upper[1:])}"


#: The thresholds of the paper (find_per_level_2thresh.m's final get_masks call, nuclei_level.pbs).
PUBLISHED = Thresholds((0.5267, 0.733, 0.18, 0.12), (-1.0, 0.61, 0.8267, 0.16))
#: Thresholds that send every pixel of every level to computation (lower 0, upper above 1).
COMPUTE_ALL = Thresholds((0.5267, 0.0, 0.0, 0.0), (-1.0, 2.0, 2.0, 2.0))


# --------------------------------------------------------------------------- options and models


@dataclass(frozen=True)
class Options:
    """How the cascade runs (defaults faithful to create_output_image_vector.py)."""

    mode: str = "exact"  # step-5 engine
    rule: str = "python"  # Q6: python (the script) or matlab (get_masks)
    q1: str = "old-numpy"  # Q1: old-numpy, intended, refuse
    png: str = "minmax"  # Q11: minmax (scipy.misc.imsave) or round (round(255 p))
    gpu: bool = False
    batch: int = 2048

    def validate(self) -> None:
        if self.rule not in rules.RULES:
            raise ValueError(f"--rule {self.rule!r} is not one of {', '.join(rules.RULES)}")
        if self.q1 not in rules.Q1_MODES:
            raise ValueError(f"--q1 {self.q1!r} is not one of {', '.join(rules.Q1_MODES)}")
        if self.png not in PNG_MODES:
            raise ValueError(f"--png {self.png!r} is not one of {', '.join(PNG_MODES)}")
        if self.mode not in inference.ENGINES:
            raise ValueError(f"--infer-mode {self.mode!r} is not one of {', '.join(inference.ENGINES)}")


@dataclass(frozen=True)
class LevelModel:
    """The trained net of one level (``<k>_<l>_caffenet_train_w32_iter_<N>.caffemodel``) and its mean."""

    level: int
    model: Path
    mean: Path


def level_models(work: Path, fold: int, iterations: int) -> dict[int, LevelModel]:
    """The original's names: models/<k>_<l>_caffenet_train_w32_iter_<N>.caffemodel, DB_train_w32_<k>_<l>.binaryproto."""
    work = Path(work)
    return {
        lv: LevelModel(
            lv,
            work / "models" / f"{fold}_{lv}_caffenet_train_w32_iter_{iterations}.caffemodel",
            work / f"DB_train_w32_{fold}_{lv}.binaryproto",
        )
        for lv in LEVELS
    }


def check_models(models: dict[int, LevelModel], levels: tuple[int, ...]) -> None:
    """FileNotFoundError naming every missing model or mean of ``levels`` (before anything runs)."""
    missing = [f"level {lv}: {p}" for lv in levels for p in (models[lv].model, models[lv].mean) if not p.is_file()]
    if missing:
        raise FileNotFoundError(
            "the cascade needs these level files, which are missing (train the level models "
            "first, or check --fold/--iter): " + "; ".join(missing)
        )


# --------------------------------------------------------------------------- outputs


def prob_path(level_dir: Path, stem: str, level: int) -> Path:
    """``<stem>_<level>_prob.png`` (the original's name, ``fname[0:-4]`` + level)."""
    return Path(level_dir) / f"{stem}_{level}_prob.png"


def _mask_path(level_dir: Path, stem: str, level: int, what: str) -> Path:
    return Path(level_dir) / f"{stem}_{level}_{what}.png"


def _stats_path(level_dir: Path, stem: str, level: int) -> Path:
    return Path(level_dir) / f"{stem}_{level}.json"


def read_prob(level_dir: Path, stem: str, level: int) -> np.ndarray:
    """A level's ``_prob.png`` as im2double / caffe.io.load_image read it (H x W x 3 float in [0, 1])."""
    return load_image(prob_path(level_dir, stem, level)).astype(np.float64)


def read_masks(level_dir: Path, stem: str, level: int) -> tuple[np.ndarray, np.ndarray]:
    """(computed, accepted) pixel masks a level recorded."""
    from PIL import Image

    out = []
    for what in ("computed", "accepted"):
        with Image.open(_mask_path(level_dir, stem, level, what)) as im:
            out.append(np.asarray(im.convert("L")) > 0)
    return out[0], out[1]


def encode_prob(prob: np.ndarray, png: str) -> np.ndarray:
    """The saved _prob.png: scipy.misc.imsave's min-max rescale over all channels, or round(255 p)."""
    return bytescale(prob) if png == "minmax" else np.floor(np.clip(prob, 0, 1) * 255 + 0.5).astype(np.uint8)


def compose(net_out: np.ndarray, computed: np.ndarray, accepted: np.ndarray) -> np.ndarray:
    """The script's output image: (1, 0, 0) everywhere, the net's probabilities at computed pixels,
    (0, ·, 1) at accepted ones. ``net_out``: H x W x classes (2 or 3), 0 outside ``computed``."""
    h, w = computed.shape
    prob = np.zeros((h, w, 3), dtype=np.float64)
    prob[:, :, 0] = 1.0
    n = min(3, net_out.shape[2])
    prob[computed, :n] = net_out[computed, :n]
    prob[accepted, 2] = 1.0
    prob[accepted, 0] = 0.0
    return prob


# --------------------------------------------------------------------------- the cascade


@dataclass
class RunResult:
    """Where a run's levels are and what each image cost per level."""

    name: str
    levels: dict[int, str] = field(default_factory=dict)  # level -> folder
    images: dict[str, dict[int, dict]] = field(default_factory=dict)  # stem -> level -> stats

    def level_dir(self, level: int) -> Path:
        return Path(self.levels[level])


class Cascade:
    """The level models and options of one configuration; runs chains of levels over images."""

    def __init__(
        self, models: dict[int, LevelModel], opts: Options, root: Path, net_dir: Path, show_progress: bool = True
    ):
        opts.validate()
        self.models, self.opts = models, opts
        self.root, self.net_dir = Path(root), Path(net_dir)
        self.show_progress = show_progress
        self._engines: dict[int, inference.Engine] = {}
        self._digests: dict[Path, str] = {}
        #: names the process (and this object) that measures the levels' seconds: the table compares
        #: wall times only of levels measured in one session
        self.session = f"{os.getpid()}-{time.time_ns()}"

    def _digest(self, path: Path) -> str:
        if path not in self._digests:
            self._digests[path] = sha256_of(path)
        return self._digests[path]

    def engine(self, level: int) -> inference.Engine:
        if level not in self._engines:
            m = self.models[level]
            e = inference.make_engine(self.opts.mode, m.model, m.mean, gpu=self.opts.gpu, net_dir=self.net_dir)
            if e.n_out not in (2, N_CLASSES):
                raise ValueError(f"{m.model}: a level model must have 2 or 3 outputs, it has {e.n_out}")
            self._engines[level] = e
        return self._engines[level]

    def key(self, level: int, parent: str | None, lower: float, upper: float) -> tuple[str, dict]:
        """Folder key of a level's outputs and the recipe it hashes."""
        m = self.models[level]
        recipe = {
            "level": level,
            "model": self._digest(m.model),
            "mean": self._digest(m.mean),
            "mode": self.opts.mode,
            "png": self.opts.png,
            "base": parent is None,
        }
        if parent is not None:
            recipe.update(parent=parent, lower=lower, upper=upper, rule=self.opts.rule, q1=self.opts.q1)
        return hashlib.sha256(json.dumps(recipe, sort_keys=True).encode()).hexdigest()[:12], recipe

    def run(
        self, images: list[Path], name: str, thresholds: Thresholds | None, levels: tuple[int, ...] = (4, 3, 2, 1)
    ) -> RunResult:
        """Run ``levels`` (coarse to fine) over ``images``: with ``thresholds`` None every level is a
        base run (``-b``: every pixel), else the first level is the base and each next level the
        cascade. Finished image-levels are skipped. Writes WORK/cascade/<name>.json."""
        return self.run_interleaved(images, [(name, thresholds, levels)])[0]

    def run_interleaved(
        self, images: list[Path], runs: list[tuple[str, Thresholds | None, tuple[int, ...]]]
    ) -> list[RunResult]:
        """Several runs (name, thresholds, levels; as :meth:`run`) image by image: each image goes
        through every run before the next image starts, so that the runs' wall times, compared in
        the table, are measured side by side in one process under the same machine load. The
        level nets are set up before any timing. Writes WORK/cascade/<name>.json of each run."""
        from tqdm import tqdm

        prepared = []
        for name, thresholds, levels in runs:
            check_models(self.models, levels)
            if thresholds is not None:
                thresholds.validate(name)
            prepared.append((self._prepare(name, thresholds, levels), thresholds, levels))
        for _, _, levels in prepared:
            for lv in levels:
                self.engine(lv)  # net set-up outside the timed levels
        desc = f"cascade {', '.join(name for name, _, _ in runs)}"
        for img in tqdm(images, desc=desc, unit="image", disable=not self.show_progress):
            for res, thresholds, levels in prepared:
                self._image(res, img, thresholds, levels)
        for res, thresholds, _ in prepared:
            atomic.write_text(
                self.root / f"{res.name}.json",
                json.dumps(
                    {
                        "name": res.name,
                        "thresholds": asdict(thresholds) if thresholds else None,
                        "options": asdict(self.opts),
                        "levels": res.levels,
                        "images": res.images,
                    },
                    indent=1,
                ),
            )
        return [res for res, _, _ in prepared]

    def _prepare(self, name: str, thresholds: Thresholds | None, levels: tuple[int, ...]) -> RunResult:
        """The run's level folders (keyed by what makes each level), created with their recipe.json."""
        res = RunResult(name)
        keys: dict[int, str] = {}
        parent = None
        for lv in levels:
            cascading = thresholds is not None and parent is not None
            lo, up = thresholds.for_run_of(lv) if cascading else (0.0, 1.0)
            key, recipe = self.key(lv, keys[parent] if cascading else None, lo, up)
            d = self.root / f"level{lv}-{key}"
            d.mkdir(parents=True, exist_ok=True)
            if not (d / "recipe.json").is_file():
                atomic.write_text(d / "recipe.json", json.dumps(recipe, indent=1))
            res.levels[lv], keys[lv] = str(d), key
            parent = lv if thresholds is not None else None
        return res

    def _image(self, res: RunResult, img: Path, thresholds: Thresholds | None, levels: tuple[int, ...]) -> None:
        """One image through a run's levels (finished image-levels read back, not recomputed)."""
        stem = img.name[:-4]
        full = None
        res.images[stem] = {}
        prev = None
        for lv in levels:
            d = res.level_dir(lv)
            sp = _stats_path(d, stem, lv)
            if sp.is_file():
                res.images[stem][lv] = json.loads(sp.read_text())
            else:
                if full is None:
                    full = load_image(img)
                cascading = thresholds is not None and prev is not None
                lo, up = thresholds.for_run_of(lv) if cascading else (0.0, 1.0)
                res.images[stem][lv] = self._level(
                    full, img, stem, lv, d, res.level_dir(prev) if cascading else None, prev, lo, up
                )
            prev = lv if thresholds is not None else None

    def _level(
        self,
        full: np.ndarray,
        img: Path,
        stem: str,
        level: int,
        out_dir: Path,
        parent_dir: Path | None,
        parent_level: int | None,
        lower: float,
        upper: float,
    ) -> dict:
        """One image at one level; writes masks, _prob.png, then the stats JSON (done marker)."""
        t0 = time.perf_counter()
        d = DIVISORS[level]
        h, w = int(full.shape[0] / d), int(full.shape[1] / d)
        if h < 1 or w < 1:
            raise ValueError(
                f"{img}: {full.shape[0]}x{full.shape[1]} is too small for level {level} "
                f"(divided by {d} it has no pixel)"
            )
        image = inference.resize_to_like_caffe(full, (h, w))
        origin = f"{img.name} level {level}"
        if parent_dir is None:
            computed, accepted = np.ones((h, w), bool), np.zeros((h, w), bool)
        elif self.opts.rule == "python":
            probs = inference.resize_to_like_caffe(read_prob(parent_dir, stem, parent_level), (h, w)).astype(np.float64)
            computed, accepted = rules.python_pixels(probs, lower, upper, self.opts.q1, origin)
        else:
            pc, pa = read_masks(parent_dir, stem, parent_level)
            comp_out, fixed_out = rules.matlab_out(read_prob(parent_dir, stem, parent_level), pc, pa, lower, upper)
            computed, accepted = rules.matlab_pixels(comp_out, fixed_out, (h, w))
        t1 = time.perf_counter()
        engine = self.engine(level)
        net = engine.run(image, inference.Options(mask=computed, batch=self.opts.batch))
        t2 = time.perf_counter()
        work = getattr(engine, "last_work", None) if engine.mask_work == "tiles" else None
        prob = compose(net, computed, accepted)
        write_png(_mask_path(out_dir, stem, level, "computed"), computed.astype(np.uint8) * 255)
        write_png(_mask_path(out_dir, stem, level, "accepted"), accepted.astype(np.uint8) * 255)
        write_png(prob_path(out_dir, stem, level), encode_prob(prob, self.opts.png))
        stats = {
            "image": img.name,
            "level": level,
            "shape": [h, w],
            "pixels": h * w,
            "computed": int(computed.sum()),
            "accepted": int(accepted.sum()),
            "seconds": round(time.perf_counter() - t0, 4),
            "engine_seconds": round(t2 - t1, 4),
            "tiles": work["tiles"] if work else None,  # fcn: output tiles computed, of "tiles_total"
            "tiles_total": work["tiles_total"] if work else None,
            "session": self.session,  # the process that measured "seconds" (like for like: table.py)
            "lower": lower if parent_dir is not None else None,
            "upper": upper if parent_dir is not None else None,
        }
        atomic.write_text(_stats_path(out_dir, stem, level), json.dumps(stats))
        log.debug("%s: %d of %d pixels computed, %d accepted", origin, stats["computed"], h * w, stats["accepted"])
        return stats


def load_run(root: Path, name: str) -> RunResult:
    """The RunResult a finished :meth:`Cascade.run` recorded in ``root/<name>.json``."""
    d = json.loads((Path(root) / f"{name}.json").read_text())
    return RunResult(
        d["name"],
        {int(lv): folder for lv, folder in d["levels"].items()},
        {stem: {int(lv): st for lv, st in per.items()} for stem, per in d["images"].items()},
    )


def final_segmentation(res: RunResult, stem: str, lower1: float, fill: bool = True) -> np.ndarray:
    """Level 1's segmentation of a run: ``(P1 > lower(1) where computed) | accepted``, holes filled."""
    d = res.level_dir(1)
    p1 = read_prob(d, stem, 1)[:, :, 1]
    computed, accepted = read_masks(d, stem, 1)
    return rules.final_mask(p1, computed, accepted, lower1, fill)
