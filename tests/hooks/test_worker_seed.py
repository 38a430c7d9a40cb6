"""Worker streams as a function of (seed, epoch, rank, worker id): a loader whose persistent
workers started at epoch 0 draws at epoch 1 what a fresh loader started at epoch 1 draws,
for torch and albumentations randomness alike."""
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from kdbench.hooks.worker_seed import EpochWorkerSeeding
from tasks.segmentation.transforms import build_seg_pipeline


class _Draws(Dataset):
    """Per sample: a torch draw, a NumPy draw and an albumentations random scale."""

    def __init__(self):
        self.pipeline = build_seg_pipeline([dict(type='SegRandomShortSideScale', base_size=200,
                                                 scale_range=(0.5, 2.0))])
        self.image = np.zeros((8, 8, 3), np.uint8)
        self.label = np.zeros((8, 8), np.uint8)

    def __len__(self):
        return 8

    def __getitem__(self, index):
        side = self.pipeline(self.image, self.label)[1].shape[0]
        return torch.tensor([torch.rand(()).item(), np.random.rand(), side])


def _epochs(first, last):
    loader = DataLoader(_Draws(), batch_size=2, num_workers=2, persistent_workers=True)
    seeding = EpochWorkerSeeding(loader, seed=3, rank=0)
    draws = {}
    for epoch in range(first, last + 1):
        seeding.set_epoch(epoch)
        draws[epoch] = torch.cat(list(loader))
    return draws


def test_persistent_workers_draw_per_epoch_streams():
    whole, resumed = _epochs(0, 1), _epochs(1, 1)
    assert torch.equal(whole[1], resumed[1])
    assert not torch.equal(whole[0], whole[1])
    assert len(set(whole[1][:, 2].tolist())) > 1          # albumentations draws differ too
