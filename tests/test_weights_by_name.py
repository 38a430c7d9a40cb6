"""Weights by name (docs/weights.md): a local path, ``torchvision://NAME`` or a URL, for
``teacher_ckpt``, ``encoder_ckpt``, the networks' ``weights`` and ``Pretrained`` init_cfgs,
served offline from the torch hub cache the tests fill; a Pretrained init that loads
nothing fails."""
import shutil
import urllib.error

import pytest
import torch
import torchvision
from mmengine.registry import DefaultScope

import tasks.segmentation  # noqa: F401
from kdbench.registry import MODELS
from kdbench.utils import weights as W

URL = 'https://example.org/models/my_resnet18.pth'


@pytest.fixture
def hub(tmp_path, monkeypatch):
    """A torch hub cache under tmp_path holding torchvision's resnet18 file (random
    weights, its real name, so the check of the hash in its name is skipped: that check
    is tested in test_trust_checkpoint.py); downloads are recorded and copy from
    ``sources``."""
    monkeypatch.setenv('TORCH_HOME', str(tmp_path / 'torch'))
    torch.manual_seed(0)
    net = torchvision.models.resnet18()
    cached = tmp_path / 'torch' / 'hub' / 'checkpoints' / 'resnet18-f37072fd.pth'
    cached.parent.mkdir(parents=True)
    torch.save(net.state_dict(), cached)
    downloads, sources = [], {}

    def download(url, path, progress=True):
        downloads.append(url)
        if url not in sources:
            raise urllib.error.URLError('no network')
        shutil.copy(sources[url], path)
    monkeypatch.setattr(W, 'download_url_to_file', download)
    monkeypatch.setattr(W, 'check_hash_in_name', lambda path, url: None)
    return net, downloads, sources


def _same(a, b, skip=()):
    b = b.state_dict()
    for key, value in a.state_dict().items():
        if not key.startswith(skip):
            assert torch.equal(value, b[key]), key


def test_torchvision_name_from_the_hub_cache(hub):
    net, downloads, _ = hub
    model = MODELS.build(dict(type='tv_resnet18', weights='torchvision://resnet18'))
    _same(net, model)
    variant = MODELS.build(dict(type='tv_resnet18', weights='IMAGENET1K_V1', num_classes=10))
    _same(net, variant, skip=('fc.',))
    seg = MODELS.build(dict(type='DeepLabV3PlusSegmentor', encoder='resnet18', num_classes=3,
                            encoder_ckpt='torchvision://ResNet18_Weights.IMAGENET1K_V1'))
    _same(seg.net.encoder, net, skip=('fc.',))
    classifier = dict(type='ImageClassifier', net=dict(type='tv_resnet18'))
    distiller = MODELS.build(dict(type='Distiller', student=classifier, teacher=classifier,
                                  teacher_ckpt='torchvision://resnet18',
                                  methods=dict(kd=dict(type='KD'))))
    _same(net, distiller.teacher.net)
    assert distiller.teacher_ckpt == W.hub_file('https://x/resnet18-f37072fd.pth')
    assert downloads == []


def test_url_downloads_once_into_the_hub_cache(hub, tmp_path):
    net, downloads, sources = hub
    sources[URL] = tmp_path / 'torch' / 'hub' / 'checkpoints' / 'resnet18-f37072fd.pth'
    for _ in range(2):
        _same(net, MODELS.build(dict(type='tv_resnet18', weights=URL)))
    assert downloads == [URL]
    assert W.hub_file(URL) == str(tmp_path / 'torch' / 'hub' / 'checkpoints' /
                                  'my_resnet18.pth')


def test_offline_error_names_the_file_to_put_where(hub, tmp_path):
    expected = tmp_path / 'torch' / 'hub' / 'checkpoints' / 'resnet101-cd907fc2.pth'
    with pytest.raises(FileNotFoundError) as err:
        MODELS.build(dict(type='DeepLabV3PlusSegmentor', encoder='resnet18',
                          encoder_ckpt='torchvision://resnet101'))
    message = str(err.value)
    assert 'https://download.pytorch.org/models/resnet101-cd907fc2.pth' in message
    assert f"copy that file to '{expected}'" in message and 'encoder_ckpt' in message
    with pytest.raises(ValueError, match="Unknown torchvision weights 'torchvision://nonet'"):
        W.resolve_weights('torchvision://nonet')


def test_pretrained_init_loads_strictly_and_fails_when_nothing_loads(hub, tmp_path):
    net, _, _ = hub
    tv_file = str(tmp_path / 'torch' / 'hub' / 'checkpoints' / 'resnet18-f37072fd.pth')
    cfg = dict(type='ImageClassifier', net=dict(type='tv_resnet18'),
               init_cfg=dict(type='Pretrained', checkpoint=tv_file))
    with DefaultScope.overwrite_default_scope('kdbench'):
        model = MODELS.build(cfg)
        model.init_weights()                  # a torchvision file into the task model
        _same(net, model.net)
        torch.save({'state_dict': MODELS.build(dict(type='resnet8')).state_dict()},
                   tmp_path / 'unrelated.pth')
        other = MODELS.build(dict(cfg, init_cfg=dict(type='Pretrained',
                                                     checkpoint=str(tmp_path / 'unrelated.pth'))))
        with pytest.raises(RuntimeError, match='unrelated.pth.*missing keys'):
            other.init_weights()


def test_evaluation_config_drops_pretraining_sources():
    from mmengine.config import ConfigDict
    cfg = ConfigDict(type='DeepLabV3PlusSegmentor', encoder_ckpt='checkpoints/r18.pth',
                     init_cfg=dict(type='Pretrained', checkpoint='x.pth'),
                     net=dict(type='tv_resnet18', weights='torchvision://resnet18'))
    plain = W.without_pretraining(cfg)
    assert plain.encoder_ckpt is None and plain.init_cfg is None and plain.net.weights is None
    assert cfg.encoder_ckpt == 'checkpoints/r18.pth'           # the input is not changed
