"""``--scoring paper|code``: which features UniCAM scores, which map perturbs which model's
images at each layer, and how batch scores are aggregated, in each mode."""
import pytest
import torch
import torch.nn.functional as F

from kdbench.distill.taps import Taps
from kdbench.explain import grad_cam, unicam
from kdbench.explain import scores as scores_module
from kdbench.explain.functional import partial_distance_correlation_sqr
from kdbench.explain.maps import ClassMaskTarget, normalise_maps
from kdbench.explain.scoring import SCORINGS, get_scoring, score_batches
from test_labels_scores import _classifier  # the FSS/RS tests' resnet8 with 5 classes


@pytest.fixture(scope='module')
def batch():
    """8 random images, classes 0-4 (three twice) and their one-hot label embeddings."""
    classes = torch.tensor([4, 3, 2, 1, 0, 4, 3, 2])
    images = torch.randn(8, 3, 16, 16, generator=torch.Generator().manual_seed(1))
    return images, classes, torch.eye(5)[classes]


def test_batches_paper_even_split_code_fixed_chunks_counting_short_ones():
    batches, divisor = score_batches(10, 4, SCORINGS['paper'].batching)
    assert [b.tolist() for b in batches] == [[0, 1, 2, 3, 4], [5, 6, 7, 8, 9]]
    assert divisor == 2
    batches, divisor = score_batches(10, 4, SCORINGS['code'].batching)
    assert [b.tolist() for b in batches] == [[0, 1, 2, 3], [4, 5, 6, 7]]
    assert divisor == 3           # the 2-image chunk is not scored but still divides
    batches, divisor = score_batches(9, 4, SCORINGS['code'].batching)
    assert [len(b) for b in batches] == [4, 4] and divisor == 3
    with pytest.raises(ValueError, match="Unknown scoring 'official'; use one of paper, code"):
        get_scoring('official')


def test_softmax_target_differentiates_the_class_probability():
    logits = torch.tensor([1.0, 2.0, 0.5])
    assert float(ClassMaskTarget(1)(logits)) == 2.0
    assert float(ClassMaskTarget(1, softmax=True)(logits)) == pytest.approx(
        float(logits.softmax(0)[1]))
    seg = torch.tensor([[[3.0, 0.0]], [[0.0, 1.0]]])       # [K=2, 1, 2]: pixel 0 is class 0
    assert float(ClassMaskTarget(0, softmax=True)(seg)) == pytest.approx(
        float(seg.softmax(0)[0, 0, 0]))


def _expected_pooled_unicam(model, given, inputs, tap, labels):
    """UniCAM whose score is R*^2 of the GAP of the final feature maps (pre_pool)."""
    pre, point = model.tap_points['pre_pool'], model.tap_points[tap]
    with torch.no_grad(), Taps(given, {'f': given.tap_points['pre_pool']}) as taps:
        given(inputs)
        z = taps['f'].mean(dim=(2, 3))
    with torch.enable_grad(), Taps(model, {'f': pre, 'a': point}) as taps:
        model(inputs.clone().requires_grad_(True))
        act, x = taps['a'], taps['f'].mean(dim=(2, 3))
        grad, = torch.autograd.grad(partial_distance_correlation_sqr(x, labels, z), act)
    maps = F.relu((grad.mean(dim=(2, 3), keepdim=True) * act.detach()).sum(dim=1))
    return normalise_maps(maps, inputs.shape[-2:])


def test_unicam_scores_the_layer_in_paper_mode_and_pooled_final_features_in_code_mode(batch):
    inputs, _, labels = batch
    student, base = _classifier(1), _classifier(2)
    pooled = unicam(student, base, inputs, 'stage2', labels,
                    features=SCORINGS['code'].unicam_features)
    torch.testing.assert_close(pooled, _expected_pooled_unicam(student, base, inputs, 'stage2',
                                                               labels))
    layer = unicam(student, base, inputs, 'stage2', labels,
                   features=SCORINGS['paper'].unicam_features)
    assert torch.equal(layer, unicam(student, base, inputs, 'stage2', labels))
    assert not torch.allclose(layer, pooled, atol=1e-3)
    with pytest.raises(ValueError, match="Unknown UniCAM features 'final'"):
        unicam(student, base, inputs, 'stage2', labels, features='final')


def _traced_explain(monkeypatch, models, batch, tap, scoring):
    """explain_batch with the perturbation and the feature read recorded: returns the
    maps and, per model, the saliency map that perturbed the images it was scored on."""
    used, perturbed = {}, {}
    real_road, real_features = scores_module.road_keep_salient, scores_module.tap_features

    def road(inputs, saliency, keep, seed=0):
        out = real_road(inputs, saliency, keep, seed=seed)
        perturbed[id(out)] = saliency
        return out

    def features(model, inputs, layer, owner='model'):
        used.setdefault(owner, []).append((layer, perturbed[id(inputs)]))
        return real_features(model, inputs, layer, owner)

    monkeypatch.setattr(scores_module, 'road_keep_salient', road)
    monkeypatch.setattr(scores_module, 'tap_features', features)
    scores, maps = scores_module.explain_batch(models, *batch, tap,
                                               method=SCORINGS[scoring].cam,
                                               scoring=SCORINGS[scoring])
    return scores, maps, used


@pytest.mark.parametrize('scoring', ['paper', 'code'])
def test_which_map_perturbs_which_models_images(monkeypatch, batch, scoring):
    inputs, classes, _ = batch
    models = {'student': _classifier(1), 'base': _classifier(2)}
    _, maps, used = _traced_explain(monkeypatch, models, batch, 'stage1', scoring)
    for name, model in models.items():
        if scoring == 'paper':      # its own Grad-CAM (logit) at the scored layer
            expected = grad_cam(model, inputs, 'stage1', classes, 'gradcam', name)
        else:                       # HiResCAM (softmax) at its last stage, for every layer
            expected = grad_cam(model, inputs, 'last_stage', classes, 'hirescam', name,
                                softmax=True)
        assert torch.equal(maps[name], expected)
        layer, saliency = used[name][0]
        assert layer == 'stage1' and saliency is maps[name]
    # the unique-feature RS: the student on its distilled map, the base on its residual one
    assert used['student'][1][1] is maps['distilled']
    assert used['base'][1][1] is maps['residual']


def test_code_mode_uses_one_map_for_all_layers_paper_mode_one_per_layer(monkeypatch, batch):
    models = {'student': _classifier(1), 'base': _classifier(2)}
    code = [_traced_explain(monkeypatch, models, batch, tap, 'code')[1]['student']
            for tap in ('stage1', 'stage3')]
    paper = [_traced_explain(monkeypatch, models, batch, tap, 'paper')[1]['student']
             for tap in ('stage1', 'stage3')]
    assert torch.equal(code[0], code[1])
    assert not torch.equal(paper[0], paper[1])
