"""timm's default pretrained weights as a kdbench weight name (docs/weights.md)."""
from __future__ import annotations

from typing import Any, Mapping


def timm_weights_name(model_name: str, pretrained_cfg: Mapping[str, Any], owner: str,
                      instead: str) -> str:
    """The URL of timm's default weights of ``model_name`` (its ``pretrained_cfg``; fetched
    through the torch hub cache like every URL), or a ``ValueError`` when timm hosts them
    on the Hugging Face hub only, naming the file to download and ``instead``, the setting
    that loads it (e.g. ``'weights=PATH instead of pretrained=True'``); ``owner`` names
    the model in the message."""
    if pretrained_cfg.get('url'):
        return pretrained_cfg['url']
    hub = pretrained_cfg.get('hf_hub_id')
    where = f"the Hugging Face hub ('{hub}')" if hub else 'no URL timm knows'
    raise ValueError(f"{owner} '{model_name}': timm's pretrained weights come from "
                     f'{where}; download the file (model.safetensors or pytorch_model.bin, '
                     f'saved as a torch state dict) and set {instead}.')
