"""CAT-KD: CAMs, cat_loss (hand-computed), binarisation, select_cams, the CATKD method."""
import pytest
import torch

from kdbench.distill.functional import (binarize_cams, cat_loss, class_activation_maps,
                                        select_cams)
from kdbench.distill.taps import TapPoint
from kdbench.registry import DISTILL_METHODS, MODELS

# A 3x3 map whose 2x2 adaptive average pool (bins rows/cols {0,1} and {1,2}) is
# [[3, 4], [6, 7]]: e.g. top-left = mean(1, 2, 4, 5) = 3.
A = torch.arange(1.0, 10.0).reshape(3, 3)
A_POOLED = torch.tensor([3.0, 4.0, 6.0, 7.0])     # squared norm 9 + 16 + 36 + 49 = 110


def _pair(scales):
    """Student CAMs [2, 2, 3, 3] = scale * A per map; teacher CAMs = A everywhere."""
    student = torch.stack([s * A for s in scales]).reshape(2, 2, 3, 3)
    return student, A.expand(2, 2, 3, 3).clone()


def test_cams_are_classifier_weighted_features():
    feat = torch.tensor([[[[1.0, 2.0]], [[3.0, -1.0]]]])       # [1, C=2, 1, 2]
    weight = torch.tensor([[1.0, 0.0], [2.0, -1.0], [0.5, 0.5]])  # [K=3, C=2]
    cams = class_activation_maps(feat, weight)
    assert cams.shape == (1, 3, 1, 2)
    torch.testing.assert_close(cams[0, :, 0], torch.tensor([[1.0, 2.0], [-1.0, 5.0],
                                                            [2.0, 0.5]]))


def test_gap_of_cams_plus_bias_equals_classifier_logits():
    torch.manual_seed(0)
    model = MODELS.build(dict(type='ImageClassifier', net=dict(type='resnet8', num_classes=7)))
    model.eval()
    captured = {}
    model.net.layer3.register_forward_hook(lambda m, a, out: captured.update(feat=out))
    logits = model(torch.randn(3, 3, 16, 16))
    cams = class_activation_maps(captured['feat'], model.net.fc.weight)
    torch.testing.assert_close(cams.mean((2, 3)) + model.net.fc.bias, logits, atol=1e-5,
                               rtol=1e-5)


def test_cams_refuse_mismatched_channels():
    with pytest.raises(ValueError, match='pre_pool'):
        class_activation_maps(torch.randn(2, 8, 4, 4), torch.randn(10, 16))


def test_cat_loss_hand_computed_unnormalized():
    # Pooled difference of map i is (c_i - 1) * A_POOLED, squared sum (c_i - 1)^2 * 110;
    # scales 1, 2, -1, 0 -> (0 + 1 + 4 + 1) * 110 over N*K*r*r = 16 cells.
    student, teacher = _pair([1.0, 2.0, -1.0, 0.0])
    loss = cat_loss(student, teacher, resolution=2, normalize=False)
    assert loss.item() == pytest.approx(6 * 110 / 16)


def test_cat_loss_hand_computed_normalized():
    # After L2 normalisation positive scales match the teacher (0); scale -1 gives -u vs u
    # (squared sum 4); the all-zero map stays 0 against u (squared sum 1): 5 / 16.
    student, teacher = _pair([1.0, 2.0, -1.0, 0.0])
    assert cat_loss(student, teacher, resolution=2, normalize=True).item() == \
        pytest.approx(5 / 16, rel=1e-6)


def test_cat_loss_zero_for_identical_and_resolution_one():
    student, teacher = _pair([1.0, 1.0, 1.0, 1.0])
    assert cat_loss(student, teacher).item() == 0.0
    # r = 1: the mean of A is 5; scale 3 gives (15 - 5)^2 = 100 for that map, 0 elsewhere.
    student, teacher = _pair([3.0, 1.0, 1.0, 1.0])
    assert cat_loss(student, teacher, resolution=1, normalize=False).item() == \
        pytest.approx(100 / 4)


def test_binarization_threshold_is_mean_absolute_value_strict():
    # mean |A| = 5: only 6, 7, 8, 9 exceed it (5 itself is not strictly greater).
    expected = torch.tensor([[0.0, 0, 0], [0, 0, 1], [1, 1, 1]])
    assert torch.equal(binarize_cams(A[None, None])[0, 0], expected)
    negative = torch.tensor([[-4.0, 0.0], [2.0, 2.0]])             # mean |.| = 2
    assert torch.equal(binarize_cams(negative[None, None])[0, 0], torch.zeros(2, 2))
    constant = torch.full((1, 1, 2, 2), 3.0)
    assert binarize_cams(constant).sum() == 0


def test_cat_loss_binarizes_the_teacher_at_full_resolution():
    # Binarised A pools to [0, 0.25, 0.5, 0.75]; a zero student gives their mean square.
    teacher = A.expand(1, 1, 3, 3)
    zero = torch.zeros(1, 1, 3, 3)
    expected = (0 + 0.25 ** 2 + 0.5 ** 2 + 0.75 ** 2) / 4
    assert cat_loss(zero, teacher, 2, normalize=False, binarize=True).item() == \
        pytest.approx(expected)
    assert cat_loss(binarize_cams(teacher), teacher, 2, normalize=False,
                    binarize=True).item() == 0.0


def test_cat_loss_accepts_different_spatial_sizes_not_classes():
    torch.manual_seed(0)
    loss = cat_loss(torch.randn(2, 5, 4, 4), torch.randn(2, 5, 8, 8))
    assert loss.ndim == 0 and torch.isfinite(loss)
    with pytest.raises(ValueError, match='same N'):
        cat_loss(torch.randn(2, 5, 4, 4), torch.randn(2, 6, 4, 4))


def test_select_cams_top_and_bottom_with_ties():
    logits = torch.tensor([[1.0, 3.0, 2.0, 3.0],
                           [5.0, 1.0, 1.0, 0.0]])
    assert select_cams(logits, 2, 'top').tolist() == [[1, 3], [0, 1]]
    assert select_cams(logits, 3, 'bottom').tolist() == [[0, 2, 1], [3, 1, 2]]
    assert select_cams(logits, 4, 'top').shape == (2, 4)


def test_select_cams_refuses_bad_arguments():
    logits = torch.randn(2, 5)
    with pytest.raises(ValueError, match=r'\[1, 5\]'):
        select_cams(logits, 6, 'top')
    with pytest.raises(ValueError, match=r'\[1, 5\]'):
        select_cams(logits, 0, 'top')
    with pytest.raises(ValueError, match='strategy'):
        select_cams(logits, 2, 'middle')


def _points(classes, channels=8):
    return {'pre_pool': TapPoint('f', channels, 4),
            'classifier': TapPoint('fc', classes, param='weight')}


def test_method_matches_functional_and_partial_transfer_selects_teacher_classes():
    torch.manual_seed(0)
    s_feat, t_feat = torch.randn(3, 8, 4, 4, requires_grad=True), torch.randn(3, 16, 8, 8)
    s_w, t_w = torch.randn(6, 8, requires_grad=True), torch.randn(6, 16)
    student, teacher = {'pre_pool': s_feat, 'classifier': s_w}, \
        {'pre_pool': t_feat, 'classifier': t_w}
    full = DISTILL_METHODS.build(dict(type='CATKD', beta=2.0, normalize=False))
    s_cams, t_cams = class_activation_maps(s_feat, s_w), class_activation_maps(t_feat, t_w)
    out = full(student, teacher)
    assert set(out) == {'loss_catkd'}
    torch.testing.assert_close(out['loss_catkd'], 2.0 * cat_loss(s_cams, t_cams, 2, False))

    partial = DISTILL_METHODS.build(dict(type='CATKD', beta=1.0, num_cams=2, strategy='bottom'))
    keep = select_cams(t_cams.mean((2, 3)), 2, 'bottom')
    rows = torch.arange(3)[:, None]
    expected = cat_loss(s_cams[rows, keep], t_cams[rows, keep], 2, True)
    loss = partial(student, teacher)['loss_catkd']
    torch.testing.assert_close(loss, expected)
    loss.backward()
    assert s_feat.grad.abs().sum() > 0 and s_w.grad.abs().sum() > 0


def test_method_refuses_class_mismatch_and_non_weight_classifier():
    method = DISTILL_METHODS.build(dict(type='CATKD'))
    with pytest.raises(ValueError, match='10 classes but the teacher has 5'):
        method.bind(_points(10), _points(5))
    not_a_weight = dict(_points(10), classifier=TapPoint('fc', 10))
    with pytest.raises(ValueError, match='GAP-linear'):
        method.bind(not_a_weight, _points(10))
    with pytest.raises(ValueError, match='strategy'):
        DISTILL_METHODS.build(dict(type='CATKD', strategy='random'))


def test_distiller_refuses_a_model_without_a_gap_linear_head(teacher_ckpt):
    class NoHead(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.body = torch.nn.Conv2d(3, 10, 1)
            self.tap_points = {'logits': TapPoint('body', 10)}

        def forward(self, x):
            return self.body(x).mean((2, 3))

    MODELS.register_module(name='_NoHeadNet', module=NoHead, force=True)
    student = dict(type='ImageClassifier', net=dict(type='_NoHeadNet'))
    teacher = dict(type='ImageClassifier', net=dict(type='resnet8', num_classes=10))
    with pytest.raises(KeyError, match="Unknown tap 'classifier'"):
        MODELS.build(dict(type='Distiller', student=student, teacher=teacher,
                          teacher_ckpt=teacher_ckpt(teacher),
                          methods=dict(cat=dict(type='CATKD'))))


def test_bias_free_student_classifier():
    model = MODELS.build(dict(type='ImageClassifier', net=dict(type='resnet8', num_classes=4),
                              classifier_bias=False))
    assert model.net.fc.bias is None
    assert 'net.fc.bias' not in model.state_dict()
    assert model(torch.randn(2, 3, 16, 16)).shape == (2, 4)


def test_num_cams_is_checked_when_built_and_bound():
    with pytest.raises(ValueError, match='num_cams must be >= 1'):
        DISTILL_METHODS.build(dict(type='CATKD', num_cams=0))
    method = DISTILL_METHODS.build(dict(type='CATKD', num_cams=11))
    method.name = 'cat_kd'
    with pytest.raises(ValueError, match=r'num_cams must be in \[1, 10\].*'
                                         r'model\.methods\.cat_kd\.num_cams'):
        method.bind(_points(10), _points(10))
    DISTILL_METHODS.build(dict(type='CATKD', num_cams=10)).bind(_points(10), _points(10))


def _cat_distiller(teacher_ckpt, **student_options):
    student = dict(type='ImageClassifier', net=dict(type='resnet8', num_classes=10),
                   **student_options)
    teacher = dict(type='ImageClassifier', net=dict(type='resnet8', num_classes=10))
    return MODELS.build(dict(type='Distiller', student=student, teacher=teacher,
                             teacher_ckpt=teacher_ckpt(teacher),
                             methods=dict(cat_kd=dict(type='CATKD'))))


def test_a_student_classifier_with_bias_is_refused_with_the_key_to_set(teacher_ckpt):
    with pytest.raises(ValueError, match=r"CATKD \('cat_kd'\) needs a bias-free student "
                                         r'.*model\.student\.classifier_bias=False'):
        _cat_distiller(teacher_ckpt)
    assert _cat_distiller(teacher_ckpt, classifier_bias=False).student.net.fc.bias is None
