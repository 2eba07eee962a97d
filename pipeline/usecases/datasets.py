"""The tutorials' data sets as published: archives, URLs, published sha256 and accepted layouts.

Each use case names its archive(s) here (``archives = (datasets.EPI,)``) and the layouts its code
reads (``reads``). Data sets without a use case yet (tubule) are declared here too, so
``python -m pipeline data fetch|check`` work for them and a use case adopts them in one line.

The sha256 of nuclei.tgz, epi.tgz and tubule.tgz were published by an independent loader
(torch-em, ``torch_em/data/datasets/histopathology/janowczyk.py``); no checksum was published for
the others, so their first download's sha256 is recorded beside them and reported as unverified.
Layouts after extraction: ../shared/DATASETS.md and the tutorials (use cases 1, 2, 4, 6, U-Net).
"""

from __future__ import annotations

from pipeline.usecases.base import Archive, Layout

SITE = "https://andrewjanowczyk.com/wp-static"

# ----------------------------------------------------------------------------- use case 6 (IDC)
IDC_PATIENT_FOLDERS = Layout(
    "as published (and the Kaggle mirror): PATIENT/{0,1}/*.png",
    images="{patient}/{label:[01]}/{name}.png",
    patient="patient",
)
IDC = Archive(
    "IDC_regular_ps50_idx5.zip",
    "http://gleason.case.edu/webdata/jpi-dl-tutorial/IDC_regular_ps50_idx5.zip",
    size="1.6 GB",
    layout="PATIENT/{0,1}/<patient>_idx5_x<X>_y<Y>_class<C>.png (50x50)",
    layouts=(IDC_PATIENT_FOLDERS,),
)

# ----------------------------------------------------------------------------- use case 2 (epithelium), U-Net
EPI_MASKS_FOLDER = Layout(
    "as published: images at the top, masks in masks/",
    images="{patient}_{n}.tif",
    masks="masks/{patient}_{n}_mask.png",
    patient="patient",
)
EPI_SIDE_BY_SIDE = Layout(
    "as the original MATLAB read it: masks beside the images",
    images="{patient}_{n}.tif",
    masks="{patient}_{n}_mask.png",
    patient="patient",
)
EPI_IMGS_MASKS = Layout(
    "as the first U-Net notebook read it: imgs/ and masks/",
    images="imgs/{patient}_{n}.tif",
    masks="masks/{patient}_{n}_mask.png",
    patient="patient",
)
EPI = Archive(
    "epi.tgz",
    f"{SITE}/epi.tgz",
    sha256="5ac91a48de7d4f158f72cfc239b9a465849166397580b95d8f695095f54bcf6d",
    size="336 MB",
    layout="<patient>_<n>.tif at the top, masks/<patient>_<n>_mask.png (white = epithelium)",
    layouts=(EPI_MASKS_FOLDER, EPI_SIDE_BY_SIDE, EPI_IMGS_MASKS),
)

# ----------------------------------------------------------------------------- use case 4 (lymphocytes)
LYMPHOCYTE_PUBLISHED = Layout(
    "as published: im<N>.tif with <N>m.tif beside it",
    images="im{id:[0-9]+}.tif",
    masks="{id:[0-9]+}m.tif",
    mask_band="A",
)
LYMPHOCYTE_TEXT_NAMES = Layout(
    "as the tutorial's text names them: img<N>_seg.tif with <N>m.tif",
    images="img{id:[0-9]+}_seg.tif",
    masks="{id:[0-9]+}m.tif",
    mask_band="A",
)
LYMPHOCYTE = Archive(
    "lymphocyte.tgz",
    f"{SITE}/lymphocyte.tgz",
    size="6.3 MB",
    layout="im<N>.tif with <N>m.tif (alpha channel = centres)",
    layouts=(LYMPHOCYTE_PUBLISHED, LYMPHOCYTE_TEXT_NAMES),
)

# ----------------------------------------------------------------------------- use case 1 (nuclei), RADHicaL
NUCLEI_SIDE_BY_SIDE = Layout(
    "as published: <patient>_<n>_original.tif with <patient>_<n>_mask.png beside it",
    images="{patient}_{n}_original.tif",
    masks="{patient}_{n}_mask.png",
    patient="patient",
)
NUCLEI = Archive(
    "nuclei.tgz",
    f"{SITE}/nuclei.tgz",
    sha256="cb881c29d9f0ae5ad1d953160a4e00be70af329e0351eed614d51b4b66c65e6b",
    layout="<patient>_<n>_original.tif with <patient>_<n>_mask.png beside it (sparse nuclei)",
    layouts=(NUCLEI_SIDE_BY_SIDE,),
)

# ----------------------------------------------------------------------------- use case 3 (tubules)
TUBULE_SIDE_BY_SIDE = Layout(
    "as published: <name>.bmp with <name>_anno.bmp beside it", images="{id}.bmp", masks="{id}_anno.bmp"
)
TUBULE = Archive(
    "tubule.tgz",
    f"{SITE}/tubule.tgz",
    sha256="4f3e49d32b993c773a4d437f7483677d6b7c53a1d29f6b0b359a21722fa1f8f3",
    layout="<name>.bmp with <name>_anno.bmp beside it",
    layouts=(TUBULE_SIDE_BY_SIDE,),
)

#: Every data set by the name ``python -m pipeline data fetch|check`` takes.
DATASETS: dict[str, Archive] = {"idc": IDC, "epi": EPI, "lymphocyte": LYMPHOCYTE, "nuclei": NUCLEI, "tubule": TUBULE}

# ----------------------------------------------------------------------------- use case 7 (lymphoma)
LYMPHOMA_CLASS_FOLDERS = Layout(
    "as published: CLL/ FL/ MCL/*.tif (a stray .DS_Store is ignored)",
    images="{label:CLL|FL|MCL}/{slide}_{n:[0-9]+}.tif",
    patient="slide",
)
LYMPHOMA = Archive(
    "lymphoma.tar.gz",
    f"{SITE}/lymphoma.tar.gz",
    size="not recorded",
    layout="CLL/ FL/ MCL/<slide>_<n>.tif, 374 RGB TIFFs of 1388x1040 (113/139/122)",
    layouts=(LYMPHOMA_CLASS_FOLDERS,),
)
DATASETS["lymphoma"] = LYMPHOMA
