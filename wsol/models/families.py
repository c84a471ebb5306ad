"""Which model a family method needs for a backbone name: the TS-CAM / SCM / SAT DeiTs and the
BAS nets (``deit_small_patch16_224`` -> ``deit_sat_small_patch16_224``, ``resnet50`` ->
``bas_resnet50``, another CNN -> its generic variant ``NAME+bas``). ``wsol train
--wsol-method`` and ``wsol evaluate --method`` both map a plain backbone through here."""
from __future__ import annotations

import re
from typing import List

from wsol.errors import WsolError
from wsol.models.method_heads import variant_for

_DEIT = re.compile(r"^deit_(tiny|small|base)_patch16_224$")


def family_names(family: str) -> List[str]:
    """The registered ``<family>`` architectures: names holding ``_<family>_`` or starting with
    ``<family>_`` (``deit_tscam_small_patch16_224``, ``bas_resnet50``; not ``deit_base_...``
    for ``bas``)."""
    from wsol.models.registry import BACKBONES

    return [n for n in BACKBONES.names() if f"_{family}_" in n or n.startswith(f"{family}_")]


def family_architecture(backbone: str, family: str) -> str:
    """The ``<family>`` architecture trained for ``backbone``: a registered name holding
    ``_<family>_`` or starting with ``<family>_`` as it is; a plain name whose family model
    is registered (``deit_small_patch16_224`` -> ``deit_tscam_small_patch16_224``,
    ``resnet50`` -> ``bas_resnet50``) mapped to it; anything else is a one-line error
    listing the family's models."""

    names = family_names(family)
    if backbone in names:
        return backbone
    m = _DEIT.match(backbone)
    for cand in ([f"deit_{family}_{m.group(1)}_patch16_224"] if m else []) + [f"{family}_{backbone}"]:
        if cand in names:
            return cand
    label = {"tscam": "TS-CAM"}.get(family, family.upper())
    raise WsolError(f"--wsol-method {family} trains a {label} model: --backbone takes "
                    f"{', '.join(names) or 'none (no such model is registered)'}, got '{backbone}'")


def bas_architecture(backbone: str) -> str:
    """The architecture ``--wsol-method bas`` trains for ``backbone`` (see :meth:`Bas.architecture_for`)."""
    from wsol.models.registry import BACKBONES

    names = family_names("bas")
    if backbone in names or f"bas_{backbone}" in names:
        return family_architecture(backbone, "bas")
    entry = BACKBONES.find(backbone.rpartition("+")[0] or backbone)
    if entry is not None and "patch tokens" in entry.info.feature_layer:
        raise WsolError(f"--wsol-method bas trains a BAS model: --backbone takes {', '.join(names)}, or a CNN "
                        f"backbone (its generic variant NAME+bas), got the ViT '{backbone}'")
    return variant_for(backbone, "bas")[0]
