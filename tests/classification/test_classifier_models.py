"""The ImageClassifier task model, the CIFAR ResNets and the torchvision ResNets (offline)."""
import pytest
import torch
import torchvision
from mmengine.dataset import default_collate

import tasks.classification  # noqa: F401  (registers networks and the classifier)
from kdbench.registry import DATASETS, METRICS, MODELS
from tasks.classification.models import CifarResNet


def _classifier(num_classes=10, arch='resnet8', **kwargs):
    torch.manual_seed(0)
    return MODELS.build(dict(type='ImageClassifier',
                             net=dict(type=arch, num_classes=num_classes), **kwargs))


@pytest.fixture(scope='module')
def batch():
    torch.manual_seed(0)
    return torch.randn(4, 3, 16, 16), dict(label=torch.tensor([0, 3, 9, 3]))


def test_tensor_mode_returns_logits(batch):
    model = _classifier().eval()
    inputs, _ = batch
    logits = model(inputs)
    assert logits.shape == (4, 10)
    assert torch.equal(model(inputs, mode='tensor'), logits)
    assert torch.equal(logits, model.net(inputs))
    assert model.num_classes == 10


def test_loss_mode_is_cross_entropy_and_backpropagates(batch):
    model = _classifier(label_smoothing=0.1)
    inputs, samples = batch
    model.eval()        # same BN statistics for the reference logits
    losses = model(inputs, samples, mode='loss')
    assert set(losses) == {'loss_cls'}
    expected = torch.nn.functional.cross_entropy(model.net(inputs), samples['label'],
                                                 label_smoothing=0.1)
    assert torch.allclose(losses['loss_cls'], expected)
    losses['loss_cls'].backward()
    assert model.net.fc.weight.grad is not None
    assert model.net.conv1.weight.grad.abs().sum() > 0


def test_predict_mode_gives_one_dict_per_sample(batch):
    model = _classifier().eval()
    inputs, samples = batch
    preds = model(inputs, samples, mode='predict')
    logits = model(inputs)
    assert len(preds) == 4
    for i, pred in enumerate(preds):
        assert set(pred) == {'pred_score', 'gt_label'}
        assert pred['pred_score'].shape == (10,) and not pred['pred_score'].requires_grad
        assert torch.equal(pred['pred_score'], logits[i])
        assert int(pred['gt_label']) == int(samples['label'][i])


def test_unknown_mode_raises_value_error(batch):
    model = _classifier()
    inputs, samples = batch
    with pytest.raises(ValueError, match="'logits'"):
        model(inputs, samples, mode='logits')
    with pytest.raises(ValueError, match='Unknown mode'):
        model(inputs, mode='predictions')


def test_tap_points_resolve_to_modules():
    model = _classifier()
    taps = model.tap_points
    assert {'stem', 'stage1', 'stage2', 'stage3', 'last_stage', 'pre_logits',
            'logits'} <= set(taps)
    modules = dict(model.named_modules())
    for name, point in taps.items():
        assert point.module.startswith('net.'), name
        assert point.module in modules, name
    assert taps['last_stage'].module == 'net.layer3' and taps['last_stage'].channels == 64
    assert taps['logits'].module == 'net.fc' and taps['logits'].channels == 10
    assert taps['stage1'].channels == 16 and taps['pre_logits'].channels == 64


@pytest.mark.parametrize('arch, widths, blocks', [
    ('resnet8', (16, 16, 32, 64), 1), ('resnet20', (16, 16, 32, 64), 3),
    ('resnet8x4', (32, 64, 128, 256), 1), ('resnet32x4', (32, 64, 128, 256), 5)])
def test_cifar_resnet_tapped_shapes_match_the_table(arch, widths, blocks):
    torch.manual_seed(0)
    net = MODELS.build(dict(type=arch, num_classes=5)).eval()
    assert isinstance(net, CifarResNet) and len(net.layer1) == blocks
    captured = {}
    modules = dict(net.named_modules())
    hooks = [modules[p.module].register_forward_hook(
        lambda m, a, out, name=name: captured.__setitem__(name, out))
        for name, p in net.tap_points.items()]
    with torch.no_grad():
        logits = net(torch.randn(2, 3, 32, 32))
    for h in hooks:
        h.remove()
    assert logits.shape == (2, 5)
    assert torch.equal(captured['logits'], logits)
    for name, point in net.tap_points.items():
        out = captured[name]
        assert out.shape[1] == point.channels, name
        if point.stride is None:      # logits [N, K] or pooled pre-logits [N, C, 1, 1]
            assert out.shape[2:] in ((), (1, 1)), name
        else:
            assert out.shape[2:] == (32 // point.stride, 32 // point.stride), name
            assert out.min() >= 0, name        # post-ReLU features, as AT assumes
    assert [net.tap_points[f'stage{i}'].channels for i in (1, 2, 3)] == list(widths[1:])


def test_cifar_resnet_rejects_bad_depth():
    with pytest.raises(ValueError, match='6n\\+2'):
        CifarResNet(depth=10)


def test_classifier_steps_on_a_collated_dataset_batch():
    """Dataset -> default_collate -> data preprocessor -> model -> metric, as the Runner."""
    ds = DATASETS.build(dict(type='DigitsDataset', split='test'))
    data = default_collate([ds[i] for i in range(8)])
    model = _classifier(data_preprocessor=dict(type='ImgDataPreprocessor',
                                               mean=[76.0] * 3, std=[95.0] * 3))
    preds = model.val_step(data)
    assert len(preds) == 8
    assert [int(p['gt_label']) for p in preds] == [int(x) for x in ds.labels[:8]]
    metric = METRICS.build(dict(type='TopKAccuracy', topk=(1, 5)))
    metric.process(data, preds)
    result = metric.evaluate(8)
    assert 0 <= result['accuracy/top1'] <= result['accuracy/top5'] <= 100
    processed = model.data_preprocessor(data, training=True)
    assert processed['inputs'].dtype == torch.float32
    losses = model(**processed, mode='loss')
    assert torch.isfinite(losses['loss_cls'])


# ------------------------------------------------------------------- torchvision ResNets

@pytest.mark.parametrize('arch, last', [('tv_resnet18', 512), ('tv_resnet34', 512),
                                        ('tv_resnet50', 2048)])
def test_torchvision_resnet_builds_offline_with_tap_table(arch, last):
    net = MODELS.build(dict(type=arch, num_classes=7))
    assert isinstance(net, torchvision.models.ResNet)
    assert net.fc.out_features == 7 and net.fc.in_features == last
    taps = net.tap_points
    assert {'stem', 'stage1', 'stage2', 'stage3', 'stage4', 'last_stage', 'pre_logits',
            'logits'} <= set(taps)
    assert taps['last_stage'].channels == last and taps['last_stage'].module == 'layer4'
    assert taps['logits'].channels == 7
    modules = dict(net.named_modules())
    assert all(p.module in modules for p in taps.values())


def test_torchvision_resnet18_forward_and_tapped_shapes():
    torch.manual_seed(0)
    net = MODELS.build(dict(type='tv_resnet18', num_classes=7)).eval()
    modules = dict(net.named_modules())
    captured = {}
    names = ['stem', 'stage1', 'stage2', 'stage3', 'last_stage']
    hooks = [modules[net.tap_points[n].module].register_forward_hook(
        lambda m, a, out, n=n: captured.__setitem__(n, out)) for n in names]
    with torch.no_grad():
        logits = net(torch.randn(1, 3, 64, 64))
    for h in hooks:
        h.remove()
    assert logits.shape == (1, 7)
    for n in names:
        point = net.tap_points[n]
        assert captured[n].shape[1:] == (point.channels, 64 // point.stride,
                                         64 // point.stride), n


def test_classifier_wraps_a_torchvision_net():
    model = _classifier(num_classes=7, arch='tv_resnet18')
    assert model.num_classes == 7
    assert model.tap_points['last_stage'].module == 'net.layer4'
    assert model.tap_points['last_stage'].channels == 512


def test_torchvision_resnet_loads_a_local_torchvision_file(tmp_path):
    torch.manual_seed(123)
    reference = torchvision.models.resnet18(num_classes=7)
    path = tmp_path / 'resnet18-local.pth'
    torch.save(reference.state_dict(), path)
    torch.manual_seed(0)        # a different random init before loading
    net = MODELS.build(dict(type='tv_resnet18', num_classes=7, weights=str(path)))
    loaded, expected = net.state_dict(), reference.state_dict()
    assert loaded.keys() == expected.keys()
    for key, value in expected.items():
        assert torch.equal(loaded[key], value), key


@pytest.mark.parametrize('prefix', ['', 'student.', 'module.student.'])
def test_torchvision_resnet_loads_a_kdbench_checkpoint(tmp_path, prefix):
    """A kdbench checkpoint of an ImageClassifier (``net.*``) or of a Distiller
    (``student.net.*``, plus method weights) also loads into the bare network."""
    model = _classifier(num_classes=7, arch='tv_resnet18')
    state = {prefix + k: v for k, v in model.state_dict().items()}
    if prefix:
        state[prefix.replace('student.', 'methods.kd.') + 'proj.weight'] = torch.zeros(2, 2)
    path = tmp_path / 'epoch_1.pth'
    torch.save({'state_dict': state, 'meta': {}}, path)
    net = MODELS.build(dict(type='tv_resnet18', num_classes=7, weights=str(path)))
    for key, value in model.net.state_dict().items():
        assert torch.equal(net.state_dict()[key], value), key


def test_torchvision_resnet_wrong_local_file_fails_loudly(tmp_path):
    path = tmp_path / 'resnet18-1000.pth'
    torch.save(torchvision.models.resnet18(num_classes=1000).state_dict(), path)
    with pytest.raises(RuntimeError, match='fc.weight'):
        MODELS.build(dict(type='tv_resnet18', num_classes=7, weights=str(path)))
    with pytest.raises(FileNotFoundError):
        MODELS.build(dict(type='tv_resnet18', num_classes=7,
                          weights=str(tmp_path / 'missing.pth')))
