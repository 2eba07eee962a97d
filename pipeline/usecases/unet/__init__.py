"""The PyTorch U-Net epithelium/stroma tutorial (choosehappy/PytorchDigitalPathology,
``segmentation_epistroma_unet/``), reimplemented as a use case; ../shared/UNET.md reads the original.

One job a module: ``tiling`` (pure tile geometry), ``split`` (patients per role), ``database``
(make_hdf5.py's pytables), ``model`` (unet.py), ``loss`` (weighted cross-entropy, edge ring),
``augment`` (albumentations 0.4 -> 2.x mapping), ``checkpoint``, ``train``, ``output``
(make_output_unet_cmd.py), ``runner`` (the stages), ``compare`` (beside Caffe use case 2),
``usecase`` (commands and options). Only ``usecase`` is imported by the registry: torch, PyTables and
albumentations are imported when a stage runs (``make setup-unet`` installs them).
"""

from pipeline.usecases.unet.usecase import UNetEpistroma

__all__ = ["UNetEpistroma"]
