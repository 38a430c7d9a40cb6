"""Saliency-guided perturbation: keep the salient pixels, impute the rest (ROAD, LeRF).

FSS and RS are measured on features of images in which only the regions a saliency map
marks as relevant survive (Adhane et al., Sec. 3.2 and App. C, after Rong et al., ICML
2022, "A Consistent and Efficient Evaluation Strategy for Attribution Methods"): the
least relevant pixels are removed first and replaced by ROAD's noisy linear imputation
(each removed pixel the weighted mean of its 8 neighbours, solved as one sparse system,
plus Gaussian noise), the ``NoisyLinearImputer`` of the ``grad-cam`` package.

Differences from the package's ``ROADLeastRelevantFirst``: the kept pixels are exactly
the ``keep`` share with the highest saliency (ties by pixel order), so a flat map still
keeps some pixels instead of leaving the imputation system without a known value; the
imputation noise comes from a fixed seed, so the scores are reproducible. The paper does
not state the share; ``keep=0.5`` is the official code's default (``--percentile 50``).
"""
from __future__ import annotations

import torch
from torch import Tensor

#: ROAD's imputation noise (standard deviation, in units of the preprocessed input).
ROAD_NOISE = 0.01


def salient_mask(saliency: Tensor, keep: float) -> Tensor:
    """Float masks ``[N, H, W]``: 1 on the ``round(keep * H * W)`` (at least 1) most
    salient pixels of each map ``[N, H, W]``, 0 elsewhere."""
    if not 0.0 < keep <= 1.0:
        raise ValueError(f'The kept share of pixels must be in (0, 1], got {keep}.')
    n, height, width = saliency.shape
    count = max(1, int(round(keep * height * width)))
    order = torch.argsort(saliency.reshape(n, -1), dim=1, descending=True, stable=True)
    mask = torch.zeros(n, height * width)
    mask.scatter_(1, order[:, :count].cpu(), 1.0)
    return mask.reshape(n, height, width)


def road_keep_salient(inputs: Tensor, saliency: Tensor, keep: float = 0.5,
                      noise: float = ROAD_NOISE, seed: int = 0) -> Tensor:
    """Images ``[N, C, H, W]`` whose least salient pixels are imputed (ROAD LeRF).

    Args:
        inputs: preprocessed images ``[N, C, H, W]`` (any device).
        saliency: maps ``[N, H, W]`` (higher = more relevant).
        keep: share of pixels kept as they are.
        noise: standard deviation of the imputation noise.
        seed: seed of that noise.
    """
    from pytorch_grad_cam.metrics.road import NoisyLinearImputer

    if saliency.shape[0] != inputs.shape[0] or saliency.shape[-2:] != inputs.shape[-2:]:
        raise ValueError(f'Saliency maps {tuple(saliency.shape)} do not match the images '
                         f'{tuple(inputs.shape)}: upsample them to the input size first.')
    if keep >= 1.0:
        return inputs
    imputer = NoisyLinearImputer(noise=noise)
    masks = salient_mask(saliency.detach().float().cpu(), keep)
    images = inputs.detach().float().cpu()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        out = torch.stack([imputer(image, mask) for image, mask in zip(images, masks)])
    return out.to(device=inputs.device, dtype=inputs.dtype)
