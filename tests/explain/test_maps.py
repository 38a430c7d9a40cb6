"""Saliency maps: CAM, Grad-CAM/HiResCAM (grad-cam package), UniCAM, the class-and-mask
target; and the ROAD perturbation."""
import pytest
import torch

from kdbench.explain import cam_maps, grad_cam, unicam
from kdbench.explain.maps import ClassMaskTarget, normalise_maps
from kdbench.explain.perturb import road_keep_salient, salient_mask
from kdbench.registry import MODELS


def _classifier(seed: int, arch: str = 'resnet8'):
    torch.manual_seed(seed)
    return MODELS.build(dict(type='ImageClassifier', net=dict(type=arch, num_classes=10))).eval()


@pytest.fixture(scope='module')
def batch():
    g = torch.Generator().manual_seed(0)
    return torch.randn(6, 3, 16, 16, generator=g), torch.tensor([0, 1, 2, 3, 4, 5])


def _check(maps, n=6, size=(16, 16)):
    assert maps.shape == (n, *size)
    assert maps.dtype == torch.float32
    assert float(maps.min()) >= 0.0 and float(maps.max()) <= 1.0
    assert float(maps.max()) == 1.0        # min-max normalised, not flat


@pytest.mark.parametrize('method', ['gradcam', 'hirescam'])
def test_grad_cam_maps_are_input_sized_normalised_and_deterministic(batch, method):
    inputs, classes = batch
    model = _classifier(0)
    maps = grad_cam(model, inputs, 'stage3', classes, method)     # stage3: 4x4 -> 16x16
    _check(maps)
    assert torch.equal(maps, grad_cam(model, inputs, 'stage3', classes, method))
    assert all(p.grad is None for p in model.parameters())
    other_class = grad_cam(model, inputs, 'stage3', (classes + 1) % 10, method)
    assert not torch.equal(maps, other_class)


def test_cam_maps_pick_the_class_map(batch):
    inputs, classes = batch
    maps = cam_maps(_classifier(1), inputs, classes)
    _check(maps)
    assert torch.equal(maps, cam_maps(_classifier(1), inputs, classes))
    assert not torch.equal(maps, cam_maps(_classifier(1), inputs, classes.flip(0)))


def test_unicam_maps_are_input_sized_normalised_and_deterministic(batch):
    inputs, classes = batch
    student, base = _classifier(2), _classifier(3)
    labels = torch.eye(10)[classes]
    distilled = unicam(student, base, inputs, 'stage2', labels)
    _check(distilled)
    assert torch.equal(distilled, unicam(student, base, inputs, 'stage2', labels))
    residual = unicam(base, student, inputs, 'stage2', labels, ('base', 'student'))
    _check(residual)
    assert not torch.equal(distilled, residual)
    assert all(p.grad is None for p in student.parameters())


def test_unicam_of_a_model_given_itself_is_empty(batch):
    inputs, classes = batch
    model = _classifier(4)
    maps = unicam(model, model, inputs, 'stage3', torch.eye(10)[classes])
    assert maps.shape == (6, 16, 16) and float(maps.abs().max()) == 0.0


def test_unicam_needs_more_than_three_images(batch):
    inputs, classes = batch
    with pytest.raises(ValueError, match='n > 3'):
        unicam(_classifier(2), _classifier(3), inputs[:3], 'stage3', torch.eye(10)[classes[:3]])


def test_unknown_and_parameter_taps_are_refused(batch):
    inputs, classes = batch
    with pytest.raises(KeyError, match="Unknown tap 'stage9'.*stage1"):
        grad_cam(_classifier(0), inputs, 'stage9', classes)
    with pytest.raises(ValueError, match="'classifier'.*feature tap"):
        grad_cam(_classifier(0), inputs, 'classifier', classes)


def test_class_mask_target_sums_the_class_over_its_predicted_pixels():
    logits = torch.tensor([[[2.0, 0.0], [0.0, 1.0]],      # class 0
                           [[1.0, 3.0], [4.0, 0.0]]])     # class 1
    assert float(ClassMaskTarget(0)(logits)) == 3.0        # pixels (0,0) and (1,1)
    assert float(ClassMaskTarget(1)(logits)) == 7.0        # pixels (0,1) and (1,0)
    assert float(ClassMaskTarget(1)(torch.tensor([0.5, 2.5]))) == 2.5
    nowhere = torch.stack([torch.ones(2, 2), torch.zeros(2, 2), torch.full((2, 2), 0.5)])
    assert float(ClassMaskTarget(2)(nowhere)) == 2.0       # no pixel predicted: all pixels


def test_segmentation_grad_cam_with_the_class_and_mask_target():
    import tasks.segmentation  # noqa: F401  (registers DeepLabV3PlusSegmentor)
    torch.manual_seed(0)
    model = MODELS.build(dict(type='DeepLabV3PlusSegmentor', encoder='resnet18',
                              num_classes=3)).eval()
    inputs = torch.randn(2, 3, 32, 32)
    maps = grad_cam(model, inputs, 'stage4', torch.tensor([1, 2]))
    _check(maps, 2, (32, 32))
    assert torch.equal(maps, grad_cam(model, inputs, 'stage4', torch.tensor([1, 2])))


def test_normalise_maps_flat_maps_become_zero():
    maps = normalise_maps(torch.stack([torch.ones(2, 2), torch.tensor([[0., 1.], [2., 3.]])]),
                          (4, 4))
    assert maps.shape == (2, 4, 4)
    assert float(maps[0].abs().max()) == 0.0
    assert float(maps[1].min()) == 0.0 and float(maps[1].max()) == 1.0


def test_salient_mask_keeps_the_most_salient_share_ties_in_pixel_order():
    saliency = torch.tensor([[[0.1, 0.9], [0.5, 0.9]]])
    assert salient_mask(saliency, 0.5).tolist() == [[[0.0, 1.0], [0.0, 1.0]]]
    assert salient_mask(saliency, 0.25).tolist() == [[[0.0, 1.0], [0.0, 0.0]]]
    assert salient_mask(torch.zeros(1, 2, 2), 0.5).tolist() == [[[1.0, 1.0], [0.0, 0.0]]]
    with pytest.raises(ValueError, match=r'\(0, 1\]'):
        salient_mask(saliency, 0.0)


def test_road_keeps_the_salient_pixels_and_imputes_the_rest(batch):
    inputs, _ = batch
    saliency = torch.rand(6, 16, 16, generator=torch.Generator().manual_seed(1))
    out = road_keep_salient(inputs, saliency, keep=0.3)
    kept = salient_mask(saliency, 0.3).bool()[:, None].expand_as(inputs)
    assert out.shape == inputs.shape
    assert torch.equal(out[kept], inputs[kept])
    assert (out[~kept] != inputs[~kept]).all()
    # imputed values are smooth: inside the range of the image, not noise-sized outliers
    assert float(out[~kept].abs().max()) <= float(inputs.abs().max()) + 0.1
    assert torch.equal(out, road_keep_salient(inputs, saliency, keep=0.3))
    assert not torch.equal(out, road_keep_salient(inputs, saliency, keep=0.3, seed=1))
    assert torch.isfinite(road_keep_salient(inputs, torch.zeros(6, 16, 16))).all()
    assert road_keep_salient(inputs, saliency, keep=1.0) is inputs
    with pytest.raises(ValueError, match='do not match the images'):
        road_keep_salient(inputs, saliency[:, :8])
