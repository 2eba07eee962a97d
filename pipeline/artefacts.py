"""The names of a work folder's artefacts, as the original scripts spelled them: the one place they
are written.

A *fold* is a fold's name: ``"1"``, or ``"1_2"`` for fold 1, level 2 (RADHicaL), whose solver and
nets the original named with a dash (``1-2-alexnet_solver_ada.prototxt``) and whose snapshots with
the underscore (``1_2_caffenet_train_w32_iter_600000.caffemodel``). Functions return names (str)
relative to the folder named in their docstring; ``*_path`` functions join them to a work folder.

Work folder of a cross-validated run (use cases 1-5, 7, RADHicaL per level; use case 6 is fold "1")::

    WORK/lists/train_w32_<k>.txt, test_w32_<k>.txt        lists of fold k (space-separated)
    WORK/lists/train_w32_parent_<k>.txt, test_..._<k>.txt patients of fold k
    WORK/DB_train_<k>, WORK/DB_test_<k>                   LevelDBs
    WORK/DB_train_w32_<k>.binaryproto                     mean of DB_train_<k>
    WORK/models/<k>-alexnet_solver_ada.prototxt           solver (fold k; "1-2-..." for fold 1 level 2)
    WORK/models/<k>-alexnet_traing_32w_db.prototxt        train/test net
    WORK/models/deploy_train32.prototxt                   deploy net
    WORK/models/<k>_caffenet_train_w32_iter_<N>.caffemodel  model after N iterations (and .solverstate)
    WORK/output/<k>/, WORK/validation/<k>/                step 5 of fold k's model on its test / validation images
"""

from __future__ import annotations

from pathlib import Path

#: The snapshot prefix's name after "<fold>_" (the original's solver template).
SNAPSHOT = "caffenet_train_w32"
#: The solver's name after "<files>-".
SOLVER = "alexnet_solver_ada.prototxt"
#: Iterations of every released model (the tutorials' solver: max_iter 600000).
RELEASED_ITERATIONS = 600000


def files(fold: int | str) -> str:
    """The prefix of fold ``fold``'s solver and nets: "1", or "1-2" for fold 1 level 2."""
    return str(fold).replace("_", "-")


def solver(fold: int | str) -> str:
    """Fold ``fold``'s solver, in WORK/models: ``1-alexnet_solver_ada.prototxt``."""
    return f"{files(fold)}-{SOLVER}"


def net(fold: int | str, dropout: bool = False) -> str:
    """Fold ``fold``'s train/test net, in WORK/models: ``1-alexnet_traing_32w_db.prototxt`` (sic)."""
    return f"{files(fold)}-alexnet_traing_32w{'_dropout' if dropout else ''}_db.prototxt"


def deploy(dropout: bool = False) -> str:
    """The deploy net, in WORK/models (one per folder, shared by its folds)."""
    return f"deploy_train32{'_dropout' if dropout else ''}.prototxt"


def snapshot_prefix(fold: int | str, snapshot: str = SNAPSHOT) -> str:
    """The snapshot prefix of fold ``fold``, in WORK/models: ``1_caffenet_train_w32`` (``snapshot``
    is the part after "<fold>_": use case 6 names its variant, mitosis its second stage)."""
    return f"{fold}_{snapshot}"


def model(fold: int | str, iterations: int, snapshot: str = SNAPSHOT) -> str:
    """Fold ``fold``'s model after ``iterations``, in WORK/models: ``1_caffenet_train_w32_iter_600000.caffemodel``."""
    return f"{snapshot_prefix(fold, snapshot)}_iter_{iterations}.caffemodel"


def snapshots(fold: int | str, snapshot: str = SNAPSHOT) -> str:
    """Glob of every snapshot, solverstate and log of fold ``fold``'s training, in WORK/models."""
    return f"{snapshot_prefix(fold, snapshot)}_*"


def train_db(fold: int | str) -> str:
    """Fold ``fold``'s training LevelDB, in WORK: ``DB_train_1``."""
    return f"DB_train_{fold}"


def test_db(fold: int | str) -> str:
    """Fold ``fold``'s test LevelDB, in WORK: ``DB_test_1``."""
    return f"DB_test_{fold}"


def mean(fold: int | str) -> str:
    """The mean of fold ``fold``'s training DB, in WORK: ``DB_train_w32_1.binaryproto``."""
    return f"DB_train_w32_{fold}.binaryproto"


def patch_list(side: str, fold: int | str) -> str:
    """Fold ``fold``'s ``side`` ("train" or "test") list of patches, in WORK/lists: ``train_w32_1.txt``."""
    return f"{side}_w32_{fold}.txt"


def parent_list(side: str, fold: int | str) -> str:
    """Fold ``fold``'s ``side`` list of patients, in WORK/lists: ``train_w32_parent_1.txt``."""
    return f"{side}_w32_parent_{fold}.txt"


def solver_path(work: Path, fold: int | str) -> Path:
    """WORK/models/<files>-alexnet_solver_ada.prototxt."""
    return Path(work) / "models" / solver(fold)


def model_path(work: Path, fold: int | str, iterations: int, snapshot: str = SNAPSHOT) -> Path:
    """WORK/models/<fold>_caffenet_train_w32_iter_<N>.caffemodel."""
    return Path(work) / "models" / model(fold, iterations, snapshot)


def mean_path(work: Path, fold: int | str) -> Path:
    """WORK/DB_train_w32_<fold>.binaryproto."""
    return Path(work) / mean(fold)


def list_path(work: Path, side: str, fold: int | str) -> Path:
    """WORK/lists/<side>_w32_<fold>.txt."""
    return Path(work) / "lists" / patch_list(side, fold)


def output_dir(work: Path, fold: int | str) -> Path:
    """Where step 5 of fold ``fold``'s model writes its test images' maps: WORK/output/<fold>/."""
    return Path(work) / "output" / str(fold)


def validation_dir(work: Path, fold: int | str) -> Path:
    """Where step 5 of fold ``fold``'s model writes its validation images' maps: WORK/validation/<fold>/."""
    return Path(work) / "validation" / str(fold)


def released_model(folder: Path, fold: int | str, snapshot: str = SNAPSHOT) -> Path:
    """A released fold model in ``folder``: ``<fold>_caffenet_train_w32_iter_600000.caffemodel``."""
    return Path(folder) / model(fold, RELEASED_ITERATIONS, snapshot)


def released_mean(folder: Path, fold: int | str) -> Path:
    """A released fold mean in ``folder``: ``DB_train_w32_<fold>.binaryproto``."""
    return Path(folder) / mean(fold)


# --------------------------------------------------------------------------- use case 6 (IDC)


def variant_snapshot(released: str, dropout: bool = False) -> str:
    """Use case 6's snapshot name (the part after "<fold>_") of a patch variant, named as its released
    model: ``caffenet_train_w32_noresize`` for ``w32_noresize``; ``..._dropout`` with the dropout net."""
    return f"caffenet_train_{released}" + ("_dropout" if dropout else "")


def variant_mean(released: str) -> str:
    """A released use-case-6 mean, named as its variant: ``DB_train_w32_noresize.binaryproto``."""
    return f"DB_train_{released}.binaryproto"


def split_list(case: str, fold: int | str = 1, parent: bool = False) -> str:
    """Use case 6's faithful TAB list of one split ``case`` ("train", "val", "test"), in WORK/lists:
    ``train_32w_1.txt`` (patches) or ``train_32w_parent_1.txt`` (their source files)."""
    return f"{case}_32w_{'parent_' if parent else ''}{fold}.txt"


def space_list_path(work: Path, side: str, fold: int | str) -> Path:
    """WORK/lists/space/<side>_w32_<fold>.txt: use case 6's space-separated copy of a list, for convert_imageset."""
    return Path(work) / "lists" / "space" / patch_list(side, fold)


# --------------------------------------------------------------------------- use case 5's second stage (mitosis)
#: The snapshot name of use case 5's second stage after "<fold>_", in WORK/models_2nd (and released):
#: ``1_caffenet_train_w32_2nd_iter_600000.caffemodel``.
SNAPSHOT_2ND = "caffenet_train_w32_2nd"


def second_stage(fold: int | str) -> str:
    """Use case 5's name of fold ``fold``'s second-stage DBs, mean and patch list: ``1_2nd``, as in
    ``train_db("1_2nd")`` = DB_train_1_2nd, ``mean("1_2nd")`` = DB_train_w32_1_2nd.binaryproto (released
    so), ``patch_list("train", "1_2nd")`` = train_w32_1_2nd.txt (in WORK/subs_2nd)."""
    return f"{fold}_2nd"
