"""tools/export_student.py: the plain student network's weights, loadable weights-only into
the bare torchvision / smp network, reproduce the distilled checkpoint's predictions."""
import os
import subprocess
import sys

import pytest
import torch
from mmengine.logging import MessageHub
from shared_setup import ROOT

import tasks.segmentation  # noqa: F401
from kdbench.registry import MODELS
from kdbench.utils.export import export_student


def _runner_checkpoint(path, distiller):
    """What a Runner saves: weights plus optimizer, message hub and meta."""
    hub = MessageHub('export-test')
    hub.update_scalar('train/loss', 0.5)
    optimizer = torch.optim.SGD(distiller.parameters(), lr=0.1, momentum=0.9)
    torch.save(dict(meta=dict(epoch=1), state_dict=distiller.state_dict(),
                    optimizer=optimizer.state_dict(), message_hub=hub.state_dict()), path)


def _distiller(student, teacher, teacher_ckpt):
    torch.manual_seed(0)
    distiller = MODELS.build(dict(type='Distiller', student=student, teacher=teacher,
                                  teacher_ckpt=teacher_ckpt(teacher),
                                  methods=dict(kd=dict(type='KD'))))
    for p in distiller.student.parameters():      # not the initialisation: trained weights
        p.data.add_(torch.randn_like(p) * 0.01)
    return distiller.eval()


def test_exported_imagenet_student_loads_into_torchvision(tmp_path, teacher_ckpt):
    import torchvision
    net = dict(type='ImageClassifier', net=dict(type='tv_resnet18', num_classes=10))
    distiller = _distiller(net, net, teacher_ckpt)
    _runner_checkpoint(tmp_path / 'epoch_1.pth', distiller)
    out = tmp_path / 'student.pth'
    done = subprocess.run([sys.executable, 'tools/export_student.py',
                           str(tmp_path / 'epoch_1.pth'), str(out)], cwd=ROOT,
                          env=dict(os.environ, PYTHONPATH=ROOT), capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    state = torch.load(out, weights_only=True)
    assert not any(k.startswith(('student.', 'net.', 'methods.', 'teacher.')) for k in state)
    bare = torchvision.models.resnet18(num_classes=10).eval()
    bare.load_state_dict(state, strict=True)
    inputs = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(bare(inputs), distiller(inputs, mode='tensor'),
                                   rtol=0, atol=0)


def test_exported_segmentation_student_loads_into_smp(tmp_path, teacher_ckpt):
    import segmentation_models_pytorch as smp
    seg = dict(type='DeepLabV3PlusSegmentor', encoder='resnet18', num_classes=5)
    distiller = _distiller(seg, seg, teacher_ckpt)
    _runner_checkpoint(tmp_path / 'iter_2.pth', distiller)
    state = export_student(str(tmp_path / 'iter_2.pth'), str(tmp_path / 'student.pth'))
    assert state.keys() == torch.load(tmp_path / 'student.pth', weights_only=True).keys()
    bare = smp.DeepLabV3Plus(encoder_name='resnet18', encoder_weights=None,
                             encoder_output_stride=16, classes=5).eval()
    bare.load_state_dict(torch.load(tmp_path / 'student.pth', weights_only=True), strict=True)
    inputs = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(bare(inputs), distiller(inputs, mode='tensor'),
                                   rtol=0, atol=0)


def test_a_foreign_file_is_refused_by_name(tmp_path):
    torch.save({'state_dict': {'backbone.w': torch.ones(1)}}, tmp_path / 'other.pth')
    with pytest.raises(ValueError, match=r"other.pth' is not a kdbench.*\['backbone'\]"):
        export_student(str(tmp_path / 'other.pth'), str(tmp_path / 'out.pth'))
