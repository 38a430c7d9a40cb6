"""The teacher's own input normalisation (kdbench/distill/teacher_inputs.py): a teacher
config declaring another mean/std gets the batch normalised its way; otherwise the
teacher sees the student's batch unchanged."""
import pytest
import torch

from kdbench.registry import MODELS

STUDENT_NORM = dict(type='ImgDataPreprocessor', mean=[120.0, 110.0, 100.0],
                    std=[60.0, 55.0, 50.0])
TEACHER_NORM = dict(type='ImgDataPreprocessor', mean=[127.5] * 3, std=[127.5] * 3)


def _distiller(tiny_classifier_cfg, teacher_ckpt, teacher_norm):
    student = dict(tiny_classifier_cfg('resnet8', 10), data_preprocessor=STUDENT_NORM)
    teacher = tiny_classifier_cfg('resnet8', 10)
    if teacher_norm is not None:
        teacher['data_preprocessor'] = teacher_norm
    return MODELS.build(dict(type='Distiller', student=student, teacher=teacher,
                             teacher_ckpt=teacher_ckpt(teacher),
                             methods=dict(kd=dict(type='KD'))))


def _teacher_input(distiller, batch):
    seen = []
    handle = distiller.teacher.register_forward_pre_hook(lambda m, args: seen.append(args[0]))
    data = distiller.data_preprocessor(batch, True)
    distiller(**data, mode='loss')
    handle.remove()
    return data['inputs'], seen[0]


@pytest.mark.parametrize('teacher_norm', [None, STUDENT_NORM])
def test_without_its_own_normalisation_the_teacher_sees_the_student_batch(
        teacher_norm, tiny_classifier_cfg, teacher_ckpt):
    distiller = _distiller(tiny_classifier_cfg, teacher_ckpt, teacher_norm)
    assert distiller.teacher_normalisation is None
    batch = distiller.student.example_batch(2, 32, torch.Generator().manual_seed(0))
    inputs, seen = _teacher_input(distiller, batch)
    assert seen is inputs


def test_a_teacher_with_another_mean_and_std_gets_its_own_normalisation(
        tiny_classifier_cfg, teacher_ckpt):
    distiller = _distiller(tiny_classifier_cfg, teacher_ckpt, TEACHER_NORM)
    batch = distiller.student.example_batch(2, 32, torch.Generator().manual_seed(0))
    inputs, seen = _teacher_input(distiller, batch)
    expected = (batch['inputs'].float() - 127.5) / 127.5
    assert torch.allclose(seen, expected, atol=1e-5)
    assert torch.allclose(inputs, (batch['inputs'].float() - torch.tensor(
        [120.0, 110.0, 100.0])[:, None, None]) / torch.tensor([60.0, 55.0, 50.0])[:, None, None],
        atol=1e-5)
    assert not any('normalisation' in key for key in distiller.state_dict())


def test_different_channel_orders_are_refused(tiny_classifier_cfg, teacher_ckpt):
    with pytest.raises(ValueError, match='bgr_to_rgb'):
        _distiller(tiny_classifier_cfg, teacher_ckpt, dict(TEACHER_NORM, bgr_to_rgb=True))


def test_a_shared_teacher_refuses_a_member_feeding_it_otherwise(tiny_classifier_cfg,
                                                                teacher_ckpt):
    from kdbench.distill.shared_teacher import SharedTeacher
    converting = _distiller(tiny_classifier_cfg, teacher_ckpt, TEACHER_NORM)
    shared = SharedTeacher(converting)
    shared.add(_distiller(tiny_classifier_cfg, teacher_ckpt, TEACHER_NORM), 'same')
    with pytest.raises(ValueError, match="plain: the teacher's input normalisation"):
        shared.add(_distiller(tiny_classifier_cfg, teacher_ckpt, None), 'plain')


def test_a_meta_device_build_keeps_a_conversion_of_the_right_shape(tiny_classifier_cfg):
    """Recipe cards build on the meta device, where no values can be compared."""
    student = dict(tiny_classifier_cfg('resnet8', 10), data_preprocessor=STUDENT_NORM)
    teacher = dict(tiny_classifier_cfg('resnet8', 10), data_preprocessor=STUDENT_NORM)
    with torch.device('meta'):
        distiller = MODELS.build(dict(type='Distiller', student=student, teacher=teacher,
                                      teacher_ckpt=None, load_teacher=False,
                                      methods=dict(kd=dict(type='KD'))))
    assert distiller.teacher_normalisation.scale.shape == (1, 3, 1, 1)
    assert distiller.teacher_normalisation.scale.is_meta
