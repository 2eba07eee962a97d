"""Every published layout, packed as published (.tgz / .zip), through the data stage and data check.

The archives are built from small generated files; the layouts are the ones the tutorials
published (../shared/DATASETS.md): epi.tgz with masks/ below the images, lymphocyte im<N>.tif with
<N>m.tif, the IDC zip's PATIENT/{0,1}/*.png (and the Kaggle mirror), nuclei _original.tif with
_mask.png, tubule .bmp with _anno.bmp. Their names are the published ones, so their (generated)
sha256 differs from the published one: these tests accept it with ALLOW_UNVERIFIED=1, and
test_data_checksums.py tests the refusal.
"""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from pipeline import REPO_ROOT, data, layouts
from pipeline.usecases import datasets, get
from tests.archive_builders import epi_files, gray_mask, idc_tree, lymph_mask, rgb, tgz


@pytest.fixture(autouse=True)
def _allow_generated(monkeypatch):
    monkeypatch.setenv("ALLOW_UNVERIFIED", "1")


# ----------------------------------------------------------------------------- epithelium


def test_epi_published_layout_is_presented_side_by_side(tmp_path):
    """The real epi.tgz: the masks sit in masks/; the MATLAB port reads them beside the images."""
    arch = tgz(tmp_path / "epi.tgz", epi_files(tmp_path))
    uc = get("epi")
    folder = uc.prepare_data(arch, tmp_path / "work" / "data")
    names = sorted(p.name for p in folder.iterdir())
    assert names == [
        "8900_00001.tif",
        "8900_00001_mask.png",
        "8901_00001.tif",
        "8901_00001_mask.png",
        "8902_00001.tif",
        "8902_00001_mask.png",
    ]
    assert (folder / "8900_00001_mask.png").resolve() == (
        tmp_path / "work" / "data" / "epi_extracted" / "masks" / "8900_00001_mask.png"
    ).resolve()
    assert {k: [p.name for p in v] for k, v in uc.images_by_patient(folder).items()} == {
        "8900": ["8900_00001.tif"],
        "8901": ["8901_00001.tif"],
        "8902": ["8902_00001.tif"],
    }
    # a second call reuses the extraction and gives the same folder
    assert uc.prepare_data(arch, tmp_path / "work" / "data") == folder


def test_epi_side_by_side_folder_is_read_in_place(tmp_path):
    """The layout the original MATLAB expected (users moved the masks by hand) is used as it is."""
    for i in range(2):
        rgb(tmp_path / "data" / f"{9000 + i}_00001.tif")
        gray_mask(tmp_path / "data" / f"{9000 + i}_00001_mask.png")
    assert get("epi").prepare_data(tmp_path / "data", tmp_path / "cache") == tmp_path / "data"
    assert not (tmp_path / "cache").exists()


def test_epi_published_archive_with_a_top_folder_and_the_unet_imgs_layout(tmp_path):
    files = epi_files(tmp_path, 2)
    arch = tgz(tmp_path / "epi.tgz", files, top="epi/")
    m, _ = data.locate(arch, tmp_path / "c", (datasets.EPI,))
    assert m.layout == datasets.EPI_MASKS_FOLDER and m.root == tmp_path / "c" / "epi_extracted" / "epi"
    imgs = {f"imgs/{k}" if k.endswith(".tif") else k: v for k, v in files.items()}
    m, _ = data.locate(tgz(tmp_path / "old.tgz", imgs), tmp_path / "c", (datasets.EPI,))
    assert m.layout == datasets.EPI_IMGS_MASKS and m.pairs == 2


def test_epi_patches_stage_runs_on_the_published_archive(tmp_path):
    """End to end through the command: `usecase2 --data epi.tgz --stages patches` on the real layout."""
    from pipeline.usecases.epi import make_cohort

    src = tmp_path / "gen"
    imgs = make_cohort(src, n_patients=5, size=64, seed=2)
    files = {}
    for img in imgs:
        files[img.name] = img
        files[f"masks/{img.stem}_mask.png"] = img.with_name(img.stem + "_mask.png")
    arch = tgz(tmp_path / "epi.tgz", files)
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "pipeline",
            "usecase2",
            "--data",
            str(arch),
            "--work",
            str(tmp_path / "w"),
            "--stages",
            "patches",
            "--max-positive",
            "5",
        ],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stderr
    report = json.loads((tmp_path / "w" / "patches_report.json").read_text())
    assert report["patients"] == ["8001", "8002", "8003", "8004", "8005"] and report["problems"] == []
    assert all(c["p"] == 5 for c in report["images"].values())


# ----------------------------------------------------------------------------- lymphocytes


@pytest.mark.parametrize(
    "image_name, layout",
    [("im{n}.tif", datasets.LYMPHOCYTE_PUBLISHED), ("img{n}_seg.tif", datasets.LYMPHOCYTE_TEXT_NAMES)],
)
def test_lymphocyte_layouts(tmp_path, image_name, layout):
    src = tmp_path / "src"
    src.mkdir()
    files = {}
    for n in (1, 2, 10):
        files[image_name.format(n=n)] = rgb(src / image_name.format(n=n), seed=n)
        files[f"{n}m.tif"] = lymph_mask(src / f"{n}m.tif", [(3, 4), (10, 12)])
    arch = tgz(tmp_path / "lymphocyte.tgz", files)
    uc = get("lymphocyte")
    folder = uc.prepare_data(arch, tmp_path / "w")
    assert folder == tmp_path / "w" / "lymphocyte_extracted"  # read in place: its code knows both names
    assert sorted(uc.images_by_patient(folder)) == sorted(Path(image_name.format(n=n)).stem for n in (1, 2, 10))
    m, _ = data.locate(arch, tmp_path / "w", uc.archives)
    assert m.layout == layout and m.pairs == 3
    from pipeline.datacheck import inventory

    rep = inventory(m, show_progress=False)
    # the alpha band holds the centres: two 255 pixels on 0
    assert rep["mask_values"] == {"{0, 255}": 3} and rep["mask_depths"] == {"8-bit RGBA (band A)": 3}


# ----------------------------------------------------------------------------- IDC


def test_idc_zip_as_published_and_the_kaggle_mirror(tmp_path):
    idc_tree(tmp_path / "src" / "IDC_regular_ps50_idx5")
    z = tmp_path / "IDC_regular_ps50_idx5.zip"
    with zipfile.ZipFile(z, "w") as zf:
        for p in sorted((tmp_path / "src").rglob("*.png")):
            zf.write(p, p.relative_to(tmp_path / "src").as_posix())
    root = get("idc").prepare_data(z, tmp_path / "w")
    assert root == tmp_path / "w" / "IDC_regular_ps50_idx5_extracted" / "IDC_regular_ps50_idx5"
    assert sorted(p.name for p in root.iterdir()) == ["10253", "8863"]
    # Kaggle mirror: patient folders at the top and again under IDC_regular_ps50_idx5/ (more patients there)
    kaggle = tmp_path / "kaggle"
    idc_tree(kaggle, ("10253",))
    idc_tree(kaggle / "IDC_regular_ps50_idx5", ("10253", "8863", "9036"))
    from pipeline.usecases.idc.dataset import prepare_idc

    assert prepare_idc(kaggle, tmp_path / "w2") == kaggle / "IDC_regular_ps50_idx5"


# ----------------------------------------------------------------------------- nuclei, tubule (declared data sets)


def test_nuclei_layout(tmp_path):
    src = tmp_path / "src"
    files = {}
    for stem in ("10262_500_f00357", "10262_500_f00358", "12750_500_f00001"):
        files[f"{stem}_original.tif"] = rgb(src / f"{stem}_original.tif")
        files[f"{stem}_mask.png"] = gray_mask(src / f"{stem}_mask.png", mode="1")
    m, check = data.locate(tgz(tmp_path / "nuclei.tgz", files), tmp_path / "w", (datasets.NUCLEI,))
    assert m.layout == datasets.NUCLEI_SIDE_BY_SIDE and m.pairs == 3 and m.patients() == ["10262", "12750"]
    assert check.status == "mismatch (accepted)"
    from pipeline.datacheck import inventory

    rep = inventory(m, show_progress=False)
    assert rep["mask_depths"] == {"1-bit": 3} and rep["mask_values"] == {"{0, 1}": 3}


def test_tubule_layout_never_takes_an_annotation_for_an_image(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    files = {}
    for stem in ("09-1339-01-2", "09-1339-01-3"):
        for name in (f"{stem}.bmp", f"{stem}_anno.bmp"):
            Image.fromarray(np.zeros((20, 24, 3), np.uint8)).save(src / name)
            files[name] = src / name
    (src / "benign.txt").write_text("09-1339-01-2\n")
    files["benign.txt"] = src / "benign.txt"
    m, _ = data.locate(tgz(tmp_path / "tubule.tgz", files), tmp_path / "w", (datasets.TUBULE,))
    assert sorted(p.name for p in m.images.values()) == ["09-1339-01-2.bmp", "09-1339-01-3.bmp"]
    assert m.pairs == 2 and m.masks_without_images() == []


# ----------------------------------------------------------------------------- nothing found


def test_nothing_found_lists_what_was_looked_for(tmp_path):
    d = tmp_path / "d"
    rgb(d / "slides" / "a.jpg")
    rgb(d / "8918_00007.tif")  # an image whose mask is missing
    with pytest.raises(FileNotFoundError) as err:
        get("epi").prepare_data(d, tmp_path / "c")
    text = str(err.value)
    assert "no epi.tgz data found in any accepted layout" in text
    for lay in datasets.EPI.layouts:
        assert lay.describe() in text
    assert "closest: 1 images of 'as published: images at the top, masks in masks/'" in text
    assert "masks/8918_00007_mask.png" in text and "1 .jpg" in text and "1 .tif" in text


def test_templates():
    rx = layouts.template_regex("{patient}_{n}_original.tif")
    assert rx.match("10262_500_f00357_original.tif").groupdict() == {"patient": "10262", "n": "500_f00357"}
    assert layouts.template_regex("{patient}/{label:[01]}/{name}.png").match("8863/2/x.png") is None
    assert (
        layouts.render("masks/{patient}_{n}_mask.png", {"patient": "8918", "n": "00007"}) == "masks/8918_00007_mask.png"
    )


def test_present_names_a_view_per_source(tmp_path):
    a, b = epi_files(tmp_path / "a", 1), epi_files(tmp_path / "b", 1)
    for name, files in (("a", a), ("b", b)):
        for n, src in files.items():
            (tmp_path / "x" / name / n).parent.mkdir(parents=True, exist_ok=True)
            (tmp_path / "x" / name / n).write_bytes(src.read_bytes())
    views = [
        layouts.present(
            layouts.find(tmp_path / "x" / n, datasets.EPI.layouts), (datasets.EPI_SIDE_BY_SIDE,), tmp_path / "cache"
        )
        for n in ("a", "b")
    ]
    assert views[0] != views[1] and all(v.parent == tmp_path / "cache" for v in views)
