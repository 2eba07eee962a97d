"""Command line: ``python -m pipeline <command> ...`` (``--help`` on any command)."""
from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

log = logging.getLogger("pipeline")


def _uc6_args(p: argparse.ArgumentParser, need_data: bool = True) -> None:
    p.add_argument("--data", type=Path, required=need_data,
                   help="IDC data: IDC_regular_ps50_idx5.zip or a folder in the PATIENT/{0,1}/*.png layout")
    p.add_argument("--work", type=Path, required=True, help="work folder (patches, lists, DBs, models, eval)")
    p.add_argument("--variant", default="crop", choices=["crop", "resize", "crop-morerot"],
                   help="published patch variant (default crop = w32_noresize)")
    p.add_argument("--iter", dest="iterations", type=int, default=600000, help="training iterations (published 600000)")
    p.add_argument("--seed", type=int, default=1, help="seed of the list shuffle and Caffe's random_seed (default 1)")
    p.add_argument("--caffe-shuffle", action="store_true", help="let convert_imageset -shuffle (unseeded, as the original)")
    p.add_argument("--gpu", action="store_true", help="train and classify on the GPU")
    p.add_argument("--dropout", action="store_true", help="the dropout net (released w32_dropout)")
    p.add_argument("--split-dir", type=Path, help="folder with cases_{train,val,test}.txt (default: the published split)")
    p.add_argument("--skip-bad", action="store_true", help="record unreadable PNGs and go on")
    p.add_argument("--jobs", type=int, help="patch workers (default: all cores)")
    p.add_argument("--no-oversample", dest="oversample", action="store_false",
                   help="evaluate the centre window only (the original averaged it with its mirror)")
    p.add_argument("--test-interval", type=int, help="solver test_interval (published 10000)")
    p.add_argument("--snapshot", type=int, help="solver snapshot interval (published 10000)")
    p.add_argument("--display", type=int, help="solver display interval (published 1000)")


def _uc6_config(a: argparse.Namespace):
    from pipeline.templates import SolverParams
    from pipeline.usecases.idc_pipeline import Config
    sp = SolverParams(max_iter=a.iterations)
    for k in ("test_interval", "snapshot", "display"):
        if getattr(a, k, None):
            setattr(sp, k, getattr(a, k))
    return Config(data=a.data, work=a.work, variant=a.variant, iterations=a.iterations, seed=a.seed,
                  caffe_shuffle=a.caffe_shuffle, gpu=a.gpu, dropout=a.dropout, split_dir=a.split_dir,
                  skip_bad=a.skip_bad, jobs=a.jobs, solver=sp, oversample=a.oversample)


def _print_summary(summary: dict) -> None:
    print("\nsummary:")
    for k, v in summary.items():
        if k in ("scores", "images") and summary.get("table"):
            continue                      # shown in the table below / in summary.json
        if k == "overall":
            print(f"  F-score {v['f_score']}, balanced accuracy {v['balanced_accuracy']}, accuracy {v['accuracy']} "
                  f"(tp {v['tp']} fp {v['fp']} fn {v['fn']} tn {v['tn']})")
        else:
            print(f"  {k}: {json.dumps(v) if isinstance(v, (dict, list)) else v}")
    if summary.get("table") and Path(summary["table"]).is_file():
        print()
        print(Path(summary["table"]).read_text())


def cmd_doctor(a) -> int:
    from pipeline import doctor
    return doctor.main(quiet=a.quiet)


def cmd_stage(a) -> int:
    from pipeline.usecases import idc_pipeline
    stages = idc_pipeline.STAGES if a.command == "usecase6" else (a.command,)
    if a.command == "usecase6" and a.stages:
        stages = tuple(a.stages.split(","))
    _print_summary(idc_pipeline.run(_uc6_config(a), stages))
    return 0


def cmd_demo(a) -> int:
    from pipeline import synth
    from pipeline.templates import SolverParams
    from pipeline.usecases import idc_pipeline
    data = a.work / "generated_cohort"
    if not (data / "cases_test.txt").is_file():
        synth.make_idc_cohort(data, seed=a.seed)
    print(f"NOTE: the demo cohort in {data} is GENERATED (synthetic H&E-like patches), not real tissue; "
          "its numbers say the pipeline works, nothing about IDC.")
    sp = SolverParams(max_iter=a.iterations, test_interval=100, snapshot=100, display=20, random_seed=a.seed)
    cfg = idc_pipeline.Config(data=data, work=a.work, variant="crop", iterations=a.iterations, seed=a.seed,
                              split_dir=data, solver=sp)
    summary = idc_pipeline.run(cfg)
    summary["cohort"] = "GENERATED (synthetic H&E-like patches): the numbers show the pipeline works, nothing about IDC"
    _print_summary(summary)
    return 0


def cmd_train(a) -> int:
    from pipeline import training
    res = training.train(a.solver, gpu=a.gpu, resume=not a.no_resume)
    print(f"model: {res.model}\nlog: {res.log}\ncsv: {res.csv}" + (f"\nresumed from {res.resumed_from}" if res.resumed_from else ""))
    return 0


def cmd_evaluate(a) -> int:
    from pipeline import evaluation, lists
    if a.model is None:
        if a.data is None or a.work is None:
            raise ValueError("evaluate needs either --model, --mean and --json (model mode) or --data and --work (stage)")
        from pipeline.usecases import idc_pipeline
        cfg = idc_pipeline.Config(data=a.data, work=a.work, variant=a.variant, dropout=a.dropout, gpu=a.gpu,
                                  split_dir=a.split_dir, oversample=a.oversample)
        _print_summary(idc_pipeline.run(cfg, ("evaluate",)))
        return 0
    if a.mean is None or a.json is None:
        raise ValueError("evaluate --model needs --mean and --json")
    if a.patients_dir is None and (a.list is None or a.patch_dir is None):
        raise ValueError("evaluate --model needs --patients-dir ROOT, or --list FILE with --patch-dir DIR")
    patients = lists.read_names(a.patients_file) if a.patients_file else None
    result = evaluation.evaluate(a.model, a.mean, a.variant, a.json, patients_dir=a.patients_dir, patients=patients,
                                 list_path=a.list, patch_dir=a.patch_dir, oversample=a.oversample, dropout=a.dropout,
                                 with_rotations=a.with_rotations, gpu=a.gpu, deploy=a.deploy)
    print(evaluation.markdown_table(result, a.variant))
    return 0


def cmd_fetch_released(a) -> int:
    from pipeline import released
    files = released.fetch(a.usecase, a.dest, from_dir=a.from_dir)
    print(f"{len(files)} released files verified in {a.dest}")
    return 0


def cmd_regress(a) -> int:
    from pipeline import REPO_ROOT, data, lists, regression
    rel = a.released
    if rel is None:
        shared = REPO_ROOT.parent / "shared" / "released"
        rel = shared if shared.is_dir() else Path("data/released")
    if a.usecase != "idc":
        from pipeline import inference
        images = inference.expand_inputs(a.images)
        if not images or not a.ours:
            raise ValueError(f"regress --usecase {a.usecase} needs --images and at least one --ours with --ours-mean")
        regression.compare_maps(rel, a.usecase, images, a.out, a.ours, a.ours_mean, a.fold, a.mode, gpu=a.gpu)
        print((a.out / "maps.md").read_text())
        return 0
    src = a.data if a.data is not None else REPO_ROOT.parent / "shared" / "realdata" / "idc"
    root = data.prepare_idc(src, a.out / "data")
    patients = lists.read_names(a.patients_file) if a.patients_file else None
    report = regression.run(rel, root, a.out, a.ours, a.ours_mean, a.ours_variant, patients, gpu=a.gpu)
    print(regression.markdown(report))
    print(f"written: {a.out / 'regress.md'}, {a.out / 'regress.json'}")
    return 0


def cmd_infer(a) -> int:
    from pipeline import inference
    factor = a.resize if a.resize is not None else inference.PRESETS.get(a.usecase or "idc", 1.0)
    opts = inference.Options(mode=a.mode, resize=factor, stride=a.stride, batch=a.batch,
                             all_pixels=a.all_pixels, gpu=a.gpu)
    images = inference.expand_inputs(a.images, a.list, a.parents)
    if not images:
        raise ValueError("no input images (give files, globs or folders of .tif/.tiff/.png)")
    engine = inference.make_engine(a.mode, a.model, a.mean, deploy=a.deploy, dropout=a.dropout, gpu=a.gpu)
    res = inference.infer_images(images, engine, a.out, opts, save_npy=a.save_npy, minmax_scale=a.minmax_scale)
    rate = res["pixels"] / res["seconds"] if res["seconds"] else 0
    print(f"\nsummary: {len(res['computed'])} image(s) computed, {len(res['skipped'])} skipped (done or claimed "
          f"by another worker), {res['pixels']} pixels in {res['seconds']:.1f} s ({rate:.0f} pixels/s, mode "
          f"{a.mode}, resize {factor}, stride {a.stride}); outputs in {a.out}")
    return 0


def _epi_config(a, data: Path):
    from pipeline.templates import SolverParams
    from pipeline.usecases import epi, image_pipeline
    sp = SolverParams(max_iter=a.iterations)
    for k in ("test_interval", "snapshot", "display"):
        if getattr(a, k, None):
            setattr(sp, k, getattr(a, k))
    from pipeline.usecases import lymphocyte
    usecase = getattr(a, "usecase_name", "epi")
    return image_pipeline.Config(data=data, work=a.work, usecase=usecase, iterations=a.iterations, seed=a.seed,
                                 jobs=a.jobs, gpu=a.gpu, caffe_shuffle=a.caffe_shuffle, solver=sp,
                                 infer_mode=a.infer_mode, stride=a.stride,
                                 params=epi.Params(max_positive=a.max_positive),
                                 lymph_params=lymphocyte.Params(n_positive=a.max_positive, classifier=a.classifier),
                                 match_radius=a.match_radius)


def cmd_usecase2(a) -> int:
    from pipeline import data
    from pipeline.usecases import image_pipeline
    stages = tuple(a.stages.split(",")) if a.stages else image_pipeline.STAGES
    folder = data.prepare_images(a.data, a.usecase_name, a.work / "data")
    _print_summary(image_pipeline.run(_epi_config(a, folder), stages))
    return 0


def cmd_demo_epi(a) -> int:
    from pipeline import synth
    from pipeline.usecases import image_pipeline
    data = a.work / "generated_cohort"
    if a.usecase_name == "epi" and not any(data.glob("*_mask.png")):
        synth.make_epi_cohort(data, seed=a.seed)
    if a.usecase_name == "lymphocyte" and not any(data.glob("i*.tif")):
        synth.make_lymphocyte_cohort(data, seed=a.seed)
    print(f"NOTE: the demo cohort in {data} is GENERATED (synthetic {a.usecase_name} images), not real tissue.")
    summary = image_pipeline.run(_epi_config(a, data))
    summary["cohort"] = f"GENERATED (synthetic): the numbers show the pipeline works, nothing about {a.usecase_name}"
    _print_summary(summary)
    return 0


def _epi_args(p: argparse.ArgumentParser, demo: bool, usecase: str = "epi") -> None:
    p.set_defaults(usecase_name=usecase)
    if not demo:
        p.add_argument("--data", type=Path, required=True,
                       help="folder of <patient>_<n>.tif and <patient>_<n>_mask.png" if usecase == "epi" else
                       "folder of im<N>.tif and <N>m.tif (alpha channel = centres)")
    p.add_argument("--work", type=Path, default=Path(f"runs/demo-{usecase}") if demo else None, required=not demo)
    p.add_argument("--classifier", default="nb", choices=["nb", "lda"],
                   help="lymphocyte negatives: naive Bayes (described) or LDA (the original code's classify default)")
    p.add_argument("--match-radius", type=float, default=6.0,
                   help="lymphocytes: detections match true centres within this many pixels (original scale)")
    p.add_argument("--iter", dest="iterations", type=int, default=200 if demo else 600000)
    p.add_argument("--seed", type=int, default=1, help="folds, centre sampling, list shuffle, Caffe random_seed")
    p.add_argument("-j", "--jobs", type=int, default=1, help="folds trained at the same time")
    p.add_argument("--gpu", action="store_true")
    p.add_argument("--caffe-shuffle", action="store_true")
    p.add_argument("--max-positive", type=int, default=(150 if usecase == "epi" else 100) if demo else
                   (5000 if usecase == "epi" else 2000), help="positive centres per image (epi 5000, lymphocyte 2000)")
    p.add_argument("--infer-mode", default="fcn" if demo else "exact", choices=["reference", "exact", "fcn"])
    p.add_argument("--stride", type=int, default=1)
    p.add_argument("--test-interval", type=int, default=100 if demo else None)
    p.add_argument("--snapshot", type=int, default=100 if demo else None)
    p.add_argument("--display", type=int, default=20 if demo else None)
    p.add_argument("--stages", help="comma-separated subset of patches,folds,dbs,prototxt,train,outputs,scores")


def cmd_data(a) -> int:
    from pipeline import data
    path = data.fetch_idc(a.dest) if a.dataset == "idc" else data.fetch_archive(a.dataset, a.dest, a.url)
    print(f"{a.dataset} archive: {path}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m pipeline", description=__doc__)
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = p.add_subparsers(dest="command", required=True)

    d = sub.add_parser("doctor", help="versions and paths of Caffe, pycaffe and dependencies")
    d.add_argument("--quiet", action="store_true", help="one line unless something is missing")
    d.set_defaults(func=cmd_doctor)

    u = sub.add_parser("usecase6", help="use case 6 (IDC) end to end")
    _uc6_args(u)
    u.add_argument("--stages", help="comma-separated subset of patches,lists,dbs,prototxt,train,evaluate")
    u.set_defaults(func=cmd_stage)
    for stage, helptext in (("patches", "step 1: patches and faithful TAB lists"),
                            ("lists", "space-separated list copies for convert_imageset"),
                            ("dbs", "LevelDBs (convert_imageset) and mean (compute_image_mean)"),
                            ("prototxt", "render solver, train/test and deploy nets, job scripts"),
                            ("train", "caffe train (resumes from the newest solverstate)")):
        s = sub.add_parser(stage, help=f"use case 6 stage: {helptext}")
        _uc6_args(s)
        s.set_defaults(func=cmd_stage)

    dm = sub.add_parser("demo", help="use case 6 on a small generated cohort (CPU, minutes)")
    dm.add_argument("--work", type=Path, default=Path("runs/demo"))
    dm.add_argument("--seed", type=int, default=1)
    dm.add_argument("--iter", dest="iterations", type=int, default=300)
    dm.set_defaults(func=cmd_demo)

    t = sub.add_parser("caffe-train", help="run caffe train on any rendered solver")
    t.add_argument("--solver", type=Path, required=True)
    t.add_argument("--gpu", action="store_true")
    t.add_argument("--no-resume", action="store_true", help="start from scratch even if snapshots exist")
    t.set_defaults(func=cmd_train)

    e = sub.add_parser("evaluate", help="patch-level scores: of any model (--model ...) or as the use-case-6 "
                                        "stage (--data ... --work ...)")
    e.add_argument("--model", type=Path, help="caffemodel to evaluate (model mode)")
    e.add_argument("--mean", type=Path, help="its binaryproto mean (model mode)")
    e.add_argument("--deploy", type=Path, help="deploy prototxt (default: rendered from the template)")
    e.add_argument("--patients-dir", type=Path, help="ROOT with PATIENT/{0,1}/*.png (50x50 originals)")
    e.add_argument("--list", type=Path, help="list of 32x32 patches (with --patch-dir)")
    e.add_argument("--patients-file", type=Path, help="patients to use (one ID a line), default all folders")
    e.add_argument("--patch-dir", type=Path)
    e.add_argument("--oversample", dest="oversample", action="store_true", default=True,
                   help="average window and mirror, as caffe.Classifier.predict (default)")
    e.add_argument("--with-rotations", action="store_true", help="also the rotated copies the patches stage writes")
    e.add_argument("--json", type=Path, help="output JSON (model mode); CSV and Markdown are written beside it")
    e.add_argument("--data", type=Path, help="IDC data (stage mode)")
    e.add_argument("--work", type=Path, help="work folder (stage mode)")
    e.add_argument("--variant", default="crop", choices=["crop", "resize", "crop-morerot"])
    e.add_argument("--dropout", action="store_true")
    e.add_argument("--gpu", action="store_true")
    e.add_argument("--no-oversample", dest="oversample", action="store_false")
    e.add_argument("--split-dir", type=Path)
    e.set_defaults(func=cmd_evaluate)

    fr = sub.add_parser("fetch-released", help="download (or copy --from a folder) the released weights and means, sha256-checked")
    fr.add_argument("--usecase", default="all", choices=["idc", "epi", "lymphocyte", "all"])
    fr.add_argument("--dest", type=Path, default=Path("data/released"))
    fr.add_argument("--from", dest="from_dir", type=Path, help="offline: copy verified files from this folder")
    fr.set_defaults(func=cmd_fetch_released)

    rg = sub.add_parser("regress", help="compare the released IDC models and your own on the same patches")
    rg.add_argument("--released", type=Path, help="folder of released files (default ../shared/released, else data/released)")
    rg.add_argument("--data", type=Path, help="IDC data (zip or folder); default ../shared/realdata/idc")
    rg.add_argument("--patients-file", type=Path, help="patients to use (default: all folders of the data)")
    rg.add_argument("--ours", type=Path, action="append", default=[], help="your caffemodel (repeatable)")
    rg.add_argument("--ours-mean", type=Path, action="append", default=[],
                    help="mean of each --ours model, in order (default WORK/DB_train_w32_1.binaryproto)")
    rg.add_argument("--ours-variant", default="crop", choices=["crop", "resize", "crop-morerot"])
    rg.add_argument("--gpu", action="store_true")
    rg.add_argument("--usecase", default="idc", choices=["idc", "epi", "lymphocyte"],
                    help="idc: patch-level table; epi/lymphocyte: probability maps of --images")
    rg.add_argument("--images", nargs="*", default=[], help="images for epi/lymphocyte map comparison")
    rg.add_argument("--fold", type=int, default=1, help="released fold model to compare with (epi/lymphocyte)")
    rg.add_argument("--mode", default="fcn", choices=["reference", "exact", "fcn"],
                    help="inference mode for the map comparison (default fcn: fast; both sides use it)")
    rg.add_argument("--out", type=Path, default=Path("runs/regress"))
    rg.set_defaults(func=cmd_regress)

    inf = sub.add_parser("infer", help="step 5: per-pixel probability maps of whole images")
    inf.add_argument("images", nargs="*", help="image files, globs or folders (.tif, .tiff, .png; *_mask excluded)")
    inf.add_argument("--model", type=Path, required=True)
    inf.add_argument("--mean", type=Path, required=True, help="binaryproto mean of the model's training DB")
    inf.add_argument("--deploy", type=Path, help="deploy prototxt (default: rendered from the template)")
    inf.add_argument("--dropout", action="store_true", help="the dropout deploy net")
    inf.add_argument("--out", type=Path, required=True)
    inf.add_argument("--usecase", choices=sorted(__import__("pipeline.inference", fromlist=["PRESETS"]).PRESETS),
                     help="preset resize factor (epi 0.5, lymphocyte 4, idc 1); --resize wins")
    inf.add_argument("--resize", type=float, help="resize factor applied to each image (default 1 or the preset)")
    inf.add_argument("--stride", type=int, default=1, help="compute every S-th row and column (default 1)")
    inf.add_argument("--mode", default="exact", choices=["reference", "exact", "fcn"])
    inf.add_argument("--batch", type=int, default=2048, help="windows per net forward (exact mode)")
    inf.add_argument("--gpu", action="store_true")
    inf.add_argument("--save-npy", action="store_true", help="also <stem>_prob.npy (float32, H x W x classes)")
    inf.add_argument("--all-pixels", action="store_true",
                     help="give every pixel a value (first row/column too; stride blocks filled)")
    inf.add_argument("--minmax-scale", action="store_true",
                     help="rescale each PNG's min..max to 0..255 as the original's scipy.misc.imsave did")
    inf.add_argument("--list", type=Path, help="file listing input images, one a line")
    inf.add_argument("--parents", type=Path, help="only images whose names start with '<id>_' of an ID listed here "
                                                  "(test_w32_parent_<k>.txt)")
    inf.set_defaults(func=cmd_infer)

    u2 = sub.add_parser("usecase2", help="use case 2 (epithelium): 5 patient folds end to end")
    _epi_args(u2, demo=False)
    u2.set_defaults(func=cmd_usecase2)
    de = sub.add_parser("demo-epi", help="use case 2 on a small generated cohort (CPU, minutes)")
    _epi_args(de, demo=True)
    de.set_defaults(func=cmd_demo_epi)
    u4 = sub.add_parser("usecase4", help="use case 4 (lymphocytes): 5 folds (each image its own patient) end to end")
    _epi_args(u4, demo=False, usecase="lymphocyte")
    u4.set_defaults(func=cmd_usecase2)
    dl = sub.add_parser("demo-lymphocyte", help="use case 4 on a small generated cohort (CPU, minutes)")
    _epi_args(dl, demo=True, usecase="lymphocyte")
    dl.set_defaults(func=cmd_demo_epi)

    da = sub.add_parser("data", help="download a dataset (explicit; needs network)")
    da.add_argument("dataset", choices=["idc", "epi", "lymphocyte"])
    da.add_argument("--url", help="override the published location")
    da.add_argument("--dest", type=Path, default=Path("data"))
    da.set_defaults(func=cmd_data)
    return p


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit status. Errors print one clear line, not a traceback."""
    a = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if a.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    try:
        return a.func(a)
    except (ValueError, FileNotFoundError, RuntimeError) as exc:
        if a.verbose:
            raise
        log.error("%s", exc)
        return 1
    except KeyboardInterrupt:
        log.error("interrupted; rerun the same command to resume")
        return 130
