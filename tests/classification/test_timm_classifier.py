"""TimmClassifier: timm families as task models with taps from timm (no network:
``pretrained=False``), and every registered method on CNN->CNN, ViT->CNN and CNN->ViT
pairs. :data:`FAMILIES` is the list docs/models.md states; a test checks the page."""
import os
import re
from typing import NamedTuple

import pytest
import torch

from kdbench.distill.table import METHOD_ORDER
from kdbench.paths import repo_root
from kdbench.registry import MODELS
from kdbench.distill.taps import Taps
from kdbench.testing import write_random_teacher

NORMALISE = dict(type='ImgDataPreprocessor', mean=[128.0] * 3, std=[64.0] * 3)


class Family(NamedTuple):
    """A timm family as tested: model name, timm kwargs (kept tiny), input side, and its
    ``pre_pool`` tap (CAT-KD's maps): ``'yes'`` (the classifier on its channel means gives
    the logits), ``'approximate'`` (a class-token ViT) or ``'no'`` (no tap)."""
    family: str
    model_name: str
    kwargs: dict
    side: int
    pre_pool: str


FAMILIES = [
    Family('ResNet', 'resnet10t', {}, 32, 'yes'),
    Family('ConvNeXt', 'convnext_atto', {}, 32, 'yes'),
    Family('EfficientNet', 'efficientnet_b0', {}, 32, 'yes'),
    Family('MobileNetV3', 'mobilenetv3_small_050', {}, 32, 'no'),
    Family('RegNet', 'regnetx_002', {}, 32, 'yes'),
    Family('ViT', 'vit_tiny_patch16_224', dict(img_size=64), 64, 'approximate'),
    Family('Swin', 'swin_tiny_patch4_window7_224',
           dict(img_size=64, window_size=2, embed_dim=24, depths=(1, 1, 1, 1),
                num_heads=(1, 1, 2, 2)), 64, 'yes'),
]


def timm_cfg(model_name: str, num_classes: int = 10, **kwargs) -> dict:
    return dict(type='TimmClassifier', model_name=model_name, num_classes=num_classes,
                data_preprocessor=NORMALISE, **kwargs)


@pytest.mark.parametrize('family', FAMILIES, ids=[f.family for f in FAMILIES])
def test_family_keeps_the_task_contract_and_its_taps_match_the_tensors(family):
    torch.manual_seed(0)
    model = MODELS.build(timm_cfg(family.model_name, **family.kwargs))
    batch = model.example_batch(2, family.side, torch.Generator().manual_seed(0))
    data = model.data_preprocessor(batch, True)
    model.train()
    losses = model(**data, mode='loss')
    assert set(losses) == {'loss_cls'} and torch.isfinite(losses['loss_cls'])
    model.eval()
    with torch.no_grad(), Taps(model, model.tap_points) as taps:
        logits = model(data['inputs'])
    records = model(data['inputs'], data['data_samples'], mode='predict')
    assert len(records) == 2 and records[0]['pred_score'].shape == (10,)
    points = model.tap_points
    assert {'stage1', 'stage2', 'stage3', 'stage4', 'last_stage', 'hint', 'pre_logits',
            'logits', 'classifier'} <= set(points)
    assert ('pre_pool' in points) == (family.pre_pool != 'no')
    assert ('pre_pool' in model.tap_notes) == (family.pre_pool != 'yes')
    for name, point in points.items():
        tensor = taps[name]
        if point.param is not None:
            assert tensor.shape == (10, points['pre_logits'].channels), name
        elif point.stride is None:
            assert tensor.shape == (2, point.channels), name
        else:
            side = family.side // point.stride
            assert tensor.shape == (2, point.channels, side, side), name
    assert torch.equal(taps['logits'], logits)
    if family.pre_pool == 'yes':          # the logits are the classifier on the pooled map
        head = model.net.get_classifier()
        assert torch.allclose(head(taps['pre_pool'].mean((2, 3))), logits, atol=1e-5)


def test_vit_stage_taps_are_the_patch_tokens_of_quarter_depth_blocks():
    torch.manual_seed(0)
    model = MODELS.build(timm_cfg('vit_tiny_patch16_224', img_size=32, reg_tokens=2)).eval()
    assert [model.tap_points[f'stage{i}'].module for i in range(1, 5)] == \
        ['net.blocks.2', 'net.blocks.5', 'net.blocks.8', 'net.blocks.11']
    inputs = torch.randn(2, 3, 32, 32)
    with torch.no_grad(), Taps(model, model.tap_points) as taps:
        model(inputs)
        tokens = model.net.forward_intermediates(inputs, indices=[11],
                                                 intermediates_only=True)[0]
    # class + 2 register tokens dropped; a 2x2 grid of 16-pixel patches remains.
    assert torch.allclose(taps['last_stage'], tokens, atol=1e-6)


def test_classifier_bias_and_bad_names():
    model = MODELS.build(timm_cfg('resnet10t', classifier_bias=False))
    assert model.net.fc.bias is None and model.num_classes == 10
    with pytest.raises(ValueError, match="no model 'resnet_nope'"):
        MODELS.build(timm_cfg('resnet_nope'))
    with pytest.raises(ValueError, match='not both'):
        MODELS.build(timm_cfg('resnet10t', pretrained=True, weights='x.pth'))


def test_weights_by_name_load_with_a_new_classifier(tmp_path):
    """``weights`` loads a timm state dict strictly but for a classifier of another size;
    ``pretrained=True`` offline names the file to copy (or the hub to fetch it from)."""
    torch.manual_seed(1)
    source = MODELS.build(timm_cfg('resnet10t', num_classes=1000)).net
    path = str(tmp_path / 'resnet10t.pth')
    torch.save(source.state_dict(), path)
    model = MODELS.build(timm_cfg('resnet10t', weights=path))
    assert torch.equal(model.net.layer4[0].conv1.weight, source.layer4[0].conv1.weight)
    assert model.net.fc.weight.shape == (10, 512)
    with pytest.raises(FileNotFoundError, match='does not exist'):
        MODELS.build(timm_cfg('resnet10t', weights=str(tmp_path / 'missing.pth')))


def test_pretrained_true_goes_through_the_weights_path_offline(tmp_path, monkeypatch):
    monkeypatch.setenv('TORCH_HOME', str(tmp_path))
    monkeypatch.setattr('kdbench.utils.weights.download_url_to_file',
                        lambda *a, **k: (_ for _ in ()).throw(OSError('offline')))
    with pytest.raises((FileNotFoundError, ValueError),
                       match=r"copy that file to|Hugging Face hub \('timm/resnet10t"):
        MODELS.build(timm_cfg('resnet10t', pretrained=True))


def test_evaluating_a_checkpoint_drops_pretrained_true():
    from kdbench.utils.weights import without_pretraining
    cfg = dict(type='Distiller', student=timm_cfg('resnet10t', pretrained=True),
               teacher=timm_cfg('convnext_atto', weights='t.pth'))
    stripped = without_pretraining(cfg)
    assert stripped['student']['pretrained'] is False
    assert stripped['teacher']['weights'] is None


# Pairs: (teacher, student) TimmClassifier configs at 64 px.
PAIRS = {
    'cnn_cnn': (('convnext_atto', {}), ('resnet10t', {})),
    'vit_cnn': (('vit_tiny_patch16_224', dict(img_size=64)), ('resnet10t', {})),
    'cnn_vit': (('convnext_atto', {}), ('vit_tiny_patch16_224', dict(img_size=64))),
}
SIDE = 64
# Methods whose defaults read dense maps: the options that put them on a classifier.
CLASSIFIER_OPTIONS = {'CWD': dict(taps=('last_stage',))}


@pytest.fixture(scope='module')
def pair_distillers(tmp_path_factory):
    """One Distiller per pair with every registered method (the teacher loaded from a
    saved state dict; a bias-free student classifier, as CAT-KD needs), built once for
    the module."""
    import kdbench.distill  # noqa: F401
    root = tmp_path_factory.mktemp('timm_teachers')
    built = {}

    def get(pair: str):
        if pair not in built:
            (t_name, t_kw), (s_name, s_kw) = PAIRS[pair]
            teacher = timm_cfg(t_name, **t_kw)
            methods = {m: dict(type=m, **CLASSIFIER_OPTIONS.get(m, {})) for m in METHOD_ORDER}
            torch.manual_seed(0)
            built[pair] = MODELS.build(dict(
                type='Distiller', teacher=teacher,
                student=timm_cfg(s_name, classifier_bias=False, **s_kw),
                teacher_ckpt=write_random_teacher(teacher, str(root / f'{pair}.pth'), 1),
                methods=methods)).train()
        return built[pair]
    return get


@pytest.mark.slow
@pytest.mark.parametrize('method', METHOD_ORDER)
@pytest.mark.parametrize('pair', list(PAIRS))
def test_every_method_steps_on_mismatched_pairs(pair, method, pair_distillers):
    distiller = pair_distillers(pair)
    batch = distiller.student.example_batch(2, SIDE, torch.Generator().manual_seed(0))
    data = distiller.data_preprocessor(batch, True)
    distiller.zero_grad(set_to_none=True)
    teacher = distiller.teacher_forward(data['inputs'])
    _, student = distiller.student_forward(data['inputs'], data['data_samples'])
    terms = distiller.methods[method](student, teacher, data['data_samples'])
    assert terms and all(v.dim() == 0 and torch.isfinite(v) for v in terms.values())
    sum(terms.values()).backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0
               for p in distiller.student.parameters())
    for name, param in distiller.methods[method].named_parameters():
        assert param.grad is not None, f'{method}: no gradient reaches {name}'
    assert all(p.grad is None for p in distiller.teacher.parameters())


def test_vit_teacher_cnn_student_steps_with_every_method_that_applies(pair_distillers):
    """The fast form of the pair test: one loss step of the ViT->CNN Distiller holding
    every registered method, each method's term backpropagated alone."""
    distiller = pair_distillers('vit_cnn')
    batch = distiller.student.example_batch(2, SIDE, torch.Generator().manual_seed(0))
    losses = distiller(**distiller.data_preprocessor(batch, True), mode='loss')
    student = list(distiller.student.parameters())
    for method in distiller.methods:
        term = losses[f'loss_{method}']
        assert term.dim() == 0 and torch.isfinite(term), method
        grads = torch.autograd.grad(term, student, retain_graph=True, allow_unused=True)
        assert any(g is not None and g.abs().sum() > 0 for g in grads), method
    assert all(p.grad is None for p in distiller.teacher.parameters())


# Models without a pre_pool: MobileNetV3 (conv + activation after pooling), a ViT with
# max pooling.
NO_PRE_POOL = {'mobilenet': ('mobilenetv3_small_050', {}),
               'vit_max': ('vit_tiny_patch16_224', dict(img_size=64, global_pool='max'))}


@pytest.mark.parametrize('teacher, student, owner', [
    (NO_PRE_POOL['mobilenet'], PAIRS['cnn_cnn'][1], 'teacher'),
    (NO_PRE_POOL['vit_max'], PAIRS['vit_cnn'][1], 'teacher'),
    (PAIRS['cnn_vit'][0], NO_PRE_POOL['mobilenet'], 'student')])
def test_cat_kd_without_a_pre_pool_map_says_so_at_build_time(teacher, student, owner):
    (t_name, t_kw), (s_name, s_kw) = teacher, student
    with pytest.raises(KeyError, match=rf"The {owner} model TimmClassifier has no tap "
                                       r"'pre_pool'.*declares no pre_pool"):
        MODELS.build(dict(type='Distiller', teacher=timm_cfg(t_name, **t_kw),
                          student=timm_cfg(s_name, classifier_bias=False, **s_kw),
                          teacher_ckpt=None, load_teacher=False,
                          methods=dict(cat=dict(type='CATKD'))))


def _randomise_norms(model: torch.nn.Module) -> None:
    """Random LayerNorm weights and biases (timm initialises them to 1 and 0)."""
    for module in model.modules():
        if isinstance(module, torch.nn.LayerNorm):
            torch.nn.init.normal_(module.weight)
            torch.nn.init.normal_(module.bias)


@pytest.mark.parametrize('model_name, kwargs', [
    ('convnext_atto', {}),                                               # head LayerNorm
    ('vit_tiny_patch16_224', dict(img_size=64, global_pool='avg')),      # fc_norm
    ('vit_tiny_patch16_224', dict(img_size=64, global_pool='avg', fc_norm=False))])
def test_pre_pool_of_a_norm_after_pooling_is_exact(model_name, kwargs):
    """With a LayerNorm after the pooling (or per token before an average), the CAMs of
    ``pre_pool`` average to the logits less the classifier's bias, whatever the norm's
    weight and bias."""
    from kdbench.distill.functional import class_activation_maps
    torch.manual_seed(0)
    model = MODELS.build(timm_cfg(model_name, **kwargs)).eval()
    _randomise_norms(model)
    assert 'pre_pool' not in model.tap_notes
    with torch.no_grad(), Taps(model, model.tap_points) as taps:
        logits = model(torch.randn(2, 3, 64, 64))
        cams = class_activation_maps(taps['pre_pool'], taps['classifier'])
    bias = model.net.get_classifier().bias
    assert cams.shape[:2] == (2, 10) and cams.shape[2] * cams.shape[3] > 1
    assert torch.allclose(cams.mean((2, 3)) + bias, logits, atol=1e-4)


def test_pre_pool_of_a_class_token_vit_is_the_normalised_patch_tokens():
    """timm's default ViT reads the class token: ``pre_pool`` is the patch tokens after the
    final norm (an approximation, noted), whose CAMs do not average to the logits."""
    torch.manual_seed(0)
    model = MODELS.build(timm_cfg('vit_tiny_patch16_224', img_size=32)).eval()
    _randomise_norms(model)
    assert 'approximation' in model.tap_notes['pre_pool']
    inputs = torch.randn(2, 3, 32, 32)
    with torch.no_grad(), Taps(model, model.tap_points) as taps:
        logits = model(inputs)
        tokens = model.net.forward_features(inputs)          # [N, 1 + 2*2, C], normed
    assert torch.allclose(taps['pre_pool'].flatten(2).transpose(1, 2), tokens[:, 1:])
    head = model.net.get_classifier()
    assert not torch.allclose(head(taps['pre_pool'].mean((2, 3))), logits, atol=1e-2)


def _cat_kd_distiller(teacher_name: str, student_name: str, teacher_ckpt):
    """A Distiller in train mode with CAT-KD only, between two timm models (the student's
    classifier bias-free, as CAT-KD needs)."""
    teacher = timm_cfg(teacher_name)
    torch.manual_seed(0)
    return MODELS.build(dict(
        type='Distiller', teacher=teacher,
        student=timm_cfg(student_name, classifier_bias=False),
        teacher_ckpt=teacher_ckpt(teacher), methods=dict(cat=dict(type='CATKD')))).train()


def test_cat_kd_on_a_convnext_student_trains_its_head_norm(teacher_ckpt):
    """The head norm's weight and bias reach the student's CAMs (``transform_params``)."""
    distiller = _cat_kd_distiller('resnet10t', 'convnext_atto', teacher_ckpt)
    _randomise_norms(distiller.student)
    batch = distiller.student.example_batch(2, 64, torch.Generator().manual_seed(0))
    data = distiller.data_preprocessor(batch, True)
    teacher_taps = distiller.teacher_forward(data['inputs'])
    _, student_taps = distiller.student_forward(data['inputs'], data['data_samples'])
    distiller.methods['cat'](student_taps, teacher_taps)['loss_cat'].backward()
    norm = distiller.student.net.head.norm
    assert norm.weight.grad.abs().sum() > 0 and norm.bias.grad is not None


def test_cat_kd_steps_on_pooling_linear_heads(teacher_ckpt):
    distiller = _cat_kd_distiller('regnetx_002', 'resnet10t', teacher_ckpt)
    batch = distiller.student.example_batch(2, 64, torch.Generator().manual_seed(0))
    losses = distiller(**distiller.data_preprocessor(batch, True), mode='loss')
    losses['loss_cat'].backward()
    assert torch.isfinite(losses['loss_cat'])
    # CAMs pass gradients to the backbone (timm's ResNet zero-inits each block's last
    # BatchNorm, so not every conv gets one at initialisation).
    assert any(p.grad is not None and p.grad.abs().sum() > 0
               for name, p in distiller.student.net.named_parameters()
               if name.startswith('layer4'))


def test_fitnet_on_strides_four_times_apart_says_so_at_build_time():
    (t_name, t_kw), (s_name, s_kw) = PAIRS['vit_cnn']
    with pytest.raises(ValueError, match=r"FitNet taps=\('stage1',\).*stride 4.*stride 16"
                                         r'.*factor of 2'):
        MODELS.build(dict(type='Distiller', teacher=timm_cfg(t_name, **t_kw),
                          student=timm_cfg(s_name, **s_kw), teacher_ckpt=None,
                          load_teacher=False,
                          methods=dict(fit=dict(type='FitNet', taps=('stage1',)))))


def test_docs_models_page_states_the_tested_families():
    """docs/models.md has one row per family of :data:`FAMILIES`, with its model name and
    whether CAT-KD applies (a ``pre_pool`` tap)."""
    text = open(os.path.join(repo_root(), 'docs', 'models.md')).read()
    for family in FAMILIES:
        row = re.search(rf'^\| {family.family} \| `{family.model_name}` \|(.*)$', text,
                        re.MULTILINE)
        assert row, f'docs/models.md lacks the row of {family.family}'
        cells = [c.strip() for c in row.group(1).split('|')]
        assert cells[-2] == family.pre_pool, (family.family, cells)
