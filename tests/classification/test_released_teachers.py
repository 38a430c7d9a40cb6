"""The released CIFAR-100 teachers (``{'epoch', 'model', 'accuracy', 'optimizer'}``, the
official model definitions' key names) load as they are, through each network's
``RELEASED_KEY_MAP``; unmapped files fail with the renames that would fix them."""
import pytest
import torch

from kdbench.registry import MODELS
from kdbench.utils.key_maps import to_released
from kdbench.utils.weights import load_task_weights

#: Every CIFAR architecture with a released-layout map, with keys of the official
#: definitions (RepDistiller's ``models/``) its released file must hold.
OFFICIAL_KEYS = {
    'resnet20': ['layer2.0.downsample.0.weight', 'layer3.0.downsample.1.running_var',
                 'fc.weight'],
    'resnet32': ['layer2.0.downsample.0.weight'],
    'resnet56': ['layer2.0.downsample.0.weight', 'layer3.8.conv2.weight'],
    'resnet110': ['layer3.17.bn2.bias'],
    'resnet8x4': ['layer1.0.downsample.0.weight'],
    'resnet32x4': ['layer1.0.downsample.1.weight', 'fc.bias'],
    'wrn_40_2': ['block1.layer.0.convShortcut.weight', 'block3.layer.5.conv2.weight',
                 'bn1.running_mean', 'conv1.weight', 'fc.weight'],
    'wrn_16_2': ['block2.layer.0.convShortcut.weight'],
    'wrn_40_1': ['block1.layer.5.bn2.weight'],
    'vgg13': ['block0.0.weight', 'block4.4.running_var', 'classifier.weight'],
    'vgg8': ['classifier.bias'],
    'resnet50_cifar': ['layer1.0.shortcut.0.weight', 'layer4.2.conv3.weight', 'linear.weight'],
    'mobilenetv2_cifar': ['conv1.0.weight', 'blocks.0.0.conv.0.weight',
                          'blocks.4.0.conv.4.running_mean', 'blocks.6.0.conv.7.weight',
                          'conv2.1.bias', 'classifier.0.weight'],
    'shufflenetv1': ['layer1.0.conv1.weight', 'layer3.3.bn3.bias', 'linear.weight'],
    'shufflenetv2': ['layer1.0.conv1.weight', 'layer1.0.bn5.running_var',
                     'layer2.7.conv3.weight', 'layer3.3.bn1.bias', 'conv2.weight', 'linear.bias'],
}


def _classifier(arch, seed):
    torch.manual_seed(seed)
    model = MODELS.build(dict(type='ImageClassifier', net=dict(type=arch, num_classes=100)))
    for module in model.modules():         # non-trivial BN statistics, so they must load too
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-0.5, 0.5)
            module.running_var.uniform_(0.5, 2.0)
    return model.eval()


def _released_file(path, model):
    state = to_released(model.state_dict(), model)
    torch.save(dict(epoch=240, model=state, accuracy=torch.tensor(75.6),
                    optimizer=dict(state={}, param_groups=[dict(lr=0.0, params=[0])])), path)
    return state


@pytest.mark.parametrize('arch', sorted(OFFICIAL_KEYS))
def test_released_teacher_loads_and_predicts_the_same(tmp_path, arch):
    teacher = _classifier(arch, seed=0)
    state = _released_file(tmp_path / 'ckpt_epoch_240.pth', teacher)
    assert set(OFFICIAL_KEYS[arch]) <= set(state)
    fresh = _classifier(arch, seed=1)
    load_task_weights(fresh, str(tmp_path / 'ckpt_epoch_240.pth'))
    inputs = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(fresh(inputs), teacher(inputs), rtol=0, atol=0)


def test_released_teacher_builds_a_distiller(tmp_path):
    teacher = _classifier('resnet32x4', seed=0)
    _released_file(tmp_path / 'ckpt_epoch_240.pth', teacher)
    net = dict(type='ImageClassifier', net=dict(type='resnet8x4', num_classes=100))
    distiller = MODELS.build(dict(type='Distiller', student=net,
                                  teacher=dict(net, net=dict(type='resnet32x4')),
                                  teacher_ckpt=str(tmp_path / 'ckpt_epoch_240.pth'),
                                  methods=dict(kd=dict(type='KD'))))
    for key, value in teacher.state_dict().items():
        assert torch.equal(distiller.teacher.state_dict()[key], value), key


def test_unmapped_file_names_keys_and_the_renames_that_fix_them(tmp_path):
    teacher = _classifier('resnet56', seed=0)
    # Renames no map declares, in a bare network's state dict (no ``net.`` prefix).
    state = {k.replace('.shortcut.', '.proj.').replace('fc.', 'linear.'): v
             for k, v in teacher.net.state_dict().items()}
    torch.save({'state_dict': state}, tmp_path / 'other.pth')
    with pytest.raises(RuntimeError) as err:
        load_task_weights(_classifier('resnet56', seed=1), str(tmp_path / 'other.pth'))
    message = str(err.value)
    assert 'other.pth' in message and 'missing keys: net.fc.bias, net.fc.weight' in message
    assert '(+6 more)' in message          # the 14 keys that differ, not all 344
    assert "'proj' -> 'shortcut' (12 keys)" in message
    assert "'linear' -> 'fc' (2 keys)" in message


def test_cifar_suite_switches_to_the_released_teachers(tmp_path):
    import os

    from kdbench.benchmark import Suite
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    suites = os.path.join(root, 'configs', 'suites')
    trained = Suite(os.path.join(suites, 'cifar100.py'), str(tmp_path / 'a'))
    released = Suite(os.path.join(suites, 'cifar100_released.py'), str(tmp_path / 'b'))
    assert any(run.role == 'teacher' for run in trained.runs)
    assert not any(run.role == 'teacher' for run in released.runs)
    kd = next(r for r in released.runs if r.name == 'KD resnet32x4 -> resnet8x4')
    assert released.config_of(kd, 0).model.teacher_ckpt == \
        'cifar_teachers/resnet32x4_vanilla/ckpt_epoch_240.pth'
    at = next(r for r in released.runs if r.name == 'AT resnet50 -> mobilenetv2')
    assert released.teacher_ckpt(at) == 'cifar_teachers/ResNet50_vanilla/ckpt_epoch_240.pth'
    commands = '\n'.join(released.commands(gpus=1))
    assert 'model.teacher_ckpt=cifar_teachers/wrn_40_2_vanilla/ckpt_epoch_240.pth' in commands
