"""The registry of use cases: name -> use case. Adding a use case is one line here.

What a use case provides is documented in :mod:`pipeline.usecases.base`.
"""

from __future__ import annotations

from pipeline.usecases.base import UseCase
from pipeline.usecases.epi import Epithelium
from pipeline.usecases.idc import IDC
from pipeline.usecases.lymphocyte import Lymphocytes
from pipeline.usecases.lymphoma import Lymphoma
from pipeline.usecases.nuclei import Nuclei
from pipeline.usecases.radhical import RADHicaL
from pipeline.usecases.unet import UNetEpistroma

#: Every use case by its name, in the order of the tutorial's numbering.
REGISTRY: dict[str, UseCase] = {
    uc.name: uc for uc in (Nuclei(), Epithelium(), Lymphocytes(), IDC(), RADHicaL(), UNetEpistroma())
}
REGISTRY[Lymphoma.name] = Lymphoma()  # use case 7


def get(name: str) -> UseCase:
    """The use case registered as ``name``; ValueError naming the known ones otherwise."""
    try:
        return REGISTRY[name]
    except KeyError:
        raise ValueError(f"unknown use case {name!r}; known: {', '.join(REGISTRY)}") from None


def names() -> list[str]:
    """Registered use-case names (for ``--usecase`` choices)."""
    return list(REGISTRY)
