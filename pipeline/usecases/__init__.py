"""The registry of use cases: name -> use case. Adding a use case is one line here.

What a use case provides is documented in :mod:`pipeline.usecases.base`.
"""

from __future__ import annotations

from pipeline.usecases.base import UseCase
from pipeline.usecases.epi import Epithelium
from pipeline.usecases.idc import IDC
from pipeline.usecases.lymphocyte import Lymphocytes
from pipeline.usecases.lymphoma import Lymphoma
from pipeline.usecases.mitosis import Mitosis
from pipeline.usecases.nuclei import Nuclei
from pipeline.usecases.radhical import RADHicaL
from pipeline.usecases.tubule import Tubule
from pipeline.usecases.unet import UNetEpistroma

#: Every use case by its name, in the order of the tutorial's numbering.
REGISTRY: dict[str, UseCase] = {
    uc.name: uc
    for uc in (
        Nuclei(),  # 1
        Epithelium(),  # 2
        Tubule(),  # 3
        Lymphocytes(),  # 4
        Mitosis(),  # 5
        IDC(),  # 6
        Lymphoma(),  # 7
        RADHicaL(),
        UNetEpistroma(),
    )
}


def get(name: str) -> UseCase:
    """The use case registered as ``name``; ValueError naming the known ones otherwise."""
    try:
        return REGISTRY[name]
    except KeyError:
        raise ValueError(f"unknown use case {name!r}; known: {', '.join(REGISTRY)}") from None


def names() -> list[str]:
    """Registered use-case names (for ``--usecase`` choices)."""
    return list(REGISTRY)
