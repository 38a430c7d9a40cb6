"""Worker streams as a function of (seed, epoch, rank, worker id): a loader whose persistent
workers started at epoch 0 draws at epoch 1 what a fresh loader started at epoch 1 draws,
for torch and albumentations randomness alike."""
import numpy as np
import torch
from mmengine.runner import Runner
from torch.utils.data import Dataset

from kdbench.hooks.worker_seed import EpochSeededDataset, EpochSampler, epoch_seeded_loader
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


def _epochs(first, last, persistent=True):
    """Draws per epoch of a loader built as KDRunner builds its train dataloader; the
    epoch reaches the sampler as mmengine's DistSamplerSeedHook passes it."""
    cfg = dict(dataset=_Draws(), sampler=dict(type='DefaultSampler', shuffle=False),
               collate_fn=dict(type='default_collate'), batch_size=2, num_workers=2,
               persistent_workers=persistent)
    loader = Runner.build_dataloader(epoch_seeded_loader(cfg, seed=3, rank=0), seed=3)
    draws = {}
    for epoch in range(first, last + 1):
        loader.sampler.set_epoch(epoch)
        draws[epoch] = torch.cat(list(loader))
    return draws


def test_persistent_workers_draw_per_epoch_streams():
    whole, resumed = _epochs(0, 1), _epochs(1, 1)
    assert torch.equal(whole[1], resumed[1])
    assert not torch.equal(whole[0], whole[1])
    assert len(set(whole[1][:, 2].tolist())) > 1          # albumentations draws differ too


def test_non_persistent_workers_draw_the_same_streams():
    assert torch.equal(_epochs(0, 1, persistent=False)[1], _epochs(0, 1)[1])


def test_the_loader_is_built_with_its_seeding():
    cfg = dict(dataset=_Draws(), sampler=dict(type='DefaultSampler', shuffle=False),
               batch_size=2, num_workers=2)
    seeded = epoch_seeded_loader(cfg, seed=3, rank=1)
    assert epoch_seeded_loader(seeded, seed=3, rank=1) is seeded
    loader = Runner.build_dataloader(seeded, seed=3)
    assert isinstance(loader.dataset, EpochSeededDataset) and loader.dataset.rank == 1
    assert isinstance(loader.sampler, EpochSampler) and loader.generator is not None
    loader.sampler.set_epoch(4)
    assert loader.sampler.sampler.epoch == 4
    assert list(loader.sampler)[:2] == [(4, 0), (4, 1)]
    assert epoch_seeded_loader(dict(cfg, num_workers=0), seed=3, rank=1) == \
        dict(cfg, num_workers=0)
