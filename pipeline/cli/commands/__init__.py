"""The shared commands, one module each; every module has ``add(sub)`` registering its parser."""

from pipeline.cli.commands import (
    caffe_train,
    data,
    doctor,
    export,
    fetch_released,
    infer,
    infer_wsi,
    regress,
    report,
    status,
    submit,
    usecases,
)

MODULES = (doctor, usecases, data, fetch_released, caffe_train, infer, infer_wsi, regress, report, submit, status)
MODULES += (export,)  # issue 29: results as GeoJSON for QuPath
