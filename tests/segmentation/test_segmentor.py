"""DeepLabV3+ task model: shapes at any size, tap table, loss, predictions, encoder weights."""
import pytest
import torch
import torch.nn.functional as F
import torchvision

import tasks.segmentation  # noqa: F401  (registers the segmentor)
from kdbench.distill.taps import Taps
from kdbench.registry import MODELS


def _segmentor(encoder='resnet18', num_classes=5, **kwargs):
    torch.manual_seed(0)
    return MODELS.build(dict(type='DeepLabV3PlusSegmentor', encoder=encoder,
                             num_classes=num_classes, **kwargs)).eval()


@pytest.fixture(scope='module')
def r18():
    return _segmentor('resnet18')


def test_logits_cover_sizes_not_divisible_by_16(r18):
    x = torch.randn(2, 3, 50, 70)
    logits = r18(x)
    assert logits.shape == (2, 5, 50, 70)
    # The image is padded at the bottom/right; the top-left crop of the padded run is it.
    padded = F.pad(x, (0, 10, 0, 14))
    with torch.no_grad():
        assert torch.allclose(logits, r18.net(padded)[..., :50, :70], atol=1e-5)


@pytest.mark.parametrize('encoder, channels', [
    ('resnet18', (64, 64, 128, 256, 512)),
    ('mobilenet_v2', (16, 24, 32, 96, 1280)),
])
def test_tap_table_matches_captured_tensors(encoder, channels):
    model = _segmentor(encoder)
    points = model.tap_points
    assert points['last_stage'] == points['stage5']
    with torch.no_grad(), Taps(model, points) as taps:
        model(torch.randn(1, 3, 64, 96))
    for name, point in points.items():
        feat = taps[name]
        assert feat.shape[1] == point.channels, name
        assert feat.shape[2:] == (64 // point.stride, 96 // point.stride), name
    assert tuple(points[f'stage{i}'].channels for i in range(1, 6)) == channels
    assert (points['decoder'].channels, points['decoder'].stride) == (256, 4)
    assert (points['logits'].channels, points['logits'].stride) == (5, 4)
    # decoder_pre_relu is the BN output the decoder's ReLU turns into the decoder feature.
    assert torch.equal(taps['decoder'], taps['decoder_pre_relu'].relu())


def test_resnet101_teacher_last_stage_is_2048_channels_at_stride_16():
    model = _segmentor('resnet101', num_classes=21)
    point = model.tap_points['last_stage']
    assert (point.module, point.channels, point.stride) == ('net.encoder.layer4', 2048, 16)


def test_loss_ignores_255_and_matches_cross_entropy(r18):
    x = torch.randn(2, 3, 32, 32)
    labels = torch.randint(0, 5, (2, 32, 32))
    labels[0, :10] = 255
    loss = r18(x, dict(label=labels), mode='loss')['loss_seg']
    expected = F.cross_entropy(r18(x), labels, ignore_index=255)
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5)
    everything_ignored = torch.full_like(labels, 255)
    assert r18(x, dict(label=everything_ignored), mode='loss')['loss_seg'].item() == 0


def test_predictions_per_image(r18):
    x = torch.randn(2, 3, 40, 24)
    labels = torch.randint(0, 5, (2, 40, 24))
    out = r18(x, dict(label=labels), mode='predict')
    assert len(out) == 2
    assert torch.equal(out[1]['pred_sem_seg'], r18(x)[1].argmax(0))
    assert torch.equal(out[1]['gt_sem_seg'], labels[1]) and out[1]['num_classes'] == 5


def test_bad_labels_give_clear_errors(r18):
    x = torch.randn(1, 3, 32, 32)
    with pytest.raises(ValueError, match=r"Labels outside \[0, 5\).*num_classes"):
        r18(x, dict(label=torch.full((1, 32, 32), 9)), mode='loss')
    with pytest.raises(ValueError, match='do not match the images'):
        r18(x, dict(label=torch.zeros(1, 16, 32, dtype=torch.long)), mode='loss')
    with pytest.raises(ValueError, match="Unsupported encoder 'vgg16'"):
        _segmentor('vgg16')


@pytest.mark.parametrize('encoder, builder', [
    ('resnet18', torchvision.models.resnet18),
    ('mobilenet_v2', torchvision.models.mobilenet_v2),
])
def test_encoder_loads_torchvision_imagenet_state_dict(tmp_path, encoder, builder):
    torch.manual_seed(3)
    reference = builder(weights=None)
    path = tmp_path / f'{encoder}.pth'
    torch.save(reference.state_dict(), path)      # the format torchvision's weights files use
    model = _segmentor(encoder, encoder_ckpt=str(path))
    encoder_state = model.net.encoder.state_dict()
    for key, value in reference.state_dict().items():
        if not key.startswith(('fc.', 'classifier.')):
            assert torch.equal(encoder_state[key], value), key


def test_encoder_checkpoint_errors_name_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match='missing.pth.*encoder_ckpt'):
        _segmentor(encoder_ckpt=str(tmp_path / 'missing.pth'))
    path = tmp_path / 'resnet34.pth'
    torch.save(torchvision.models.resnet34(weights=None).state_dict(), path)
    with pytest.raises(RuntimeError, match='resnet34.pth.*unexpected keys: layer1.2'):
        _segmentor('resnet18', encoder_ckpt=str(path))


# ------------------------------------------------------------- timm encoders ('tu-NAME')

@pytest.mark.parametrize('encoder, output_stride, strides', [
    ('tu-resnet18', 16, (2, 4, 8, 16, 16)),
    ('tu-convnext_atto', 8, (None, 4, 8, 8, 8)),          # starts at stride 4
    ('tu-mobilenetv3_small_050', 16, (2, 4, 8, 16, 16)),
])
def test_timm_encoder_taps_are_the_features_the_decoder_reads(encoder, output_stride, strides):
    model = _segmentor(encoder, output_stride=output_stride)
    points = model.tap_points
    assert points['last_stage'] == points['stage5']
    inputs = torch.randn(2, 3, 64, 64)
    with torch.no_grad(), Taps(model, points) as taps:
        model(inputs)
        features = model.net.encoder(inputs)
    for index, stride in enumerate(strides, 1):
        name = f'stage{index}'
        if stride is None:
            assert name not in points and 'no stride-2 feature' in model.tap_notes[name]
            continue
        assert points[name].stride == stride, name
        assert taps[name].shape == (2, points[name].channels, 64 // stride, 64 // stride)
        assert torch.equal(taps[name], features[index]), name
    assert taps['aspp'].shape[-1] == 64 // output_stride


@pytest.mark.parametrize('encoder, kwargs, match', [
    ('tu-swin_tiny_patch4_window7_224', {}, 'cannot dilate its last stages'),
    ('tu-vit_tiny_patch16_224', {}, 'do not halve in size'),
    ('tu-no_such_model', {}, 'timm has no such model'),
    ('tu-resnet18', dict(encoder_weights='imagenet2'), "encoder_weights must be None or "
                                                       "'imagenet'"),
    ('tu-resnet18', dict(encoder_weights='imagenet', encoder_ckpt='x.pth'), 'not both'),
])
def test_timm_encoders_deeplabv3plus_cannot_use_say_why(encoder, kwargs, match):
    with pytest.raises(ValueError, match=match):
        _segmentor(encoder, **kwargs)


def test_timm_encoder_loads_a_timm_state_dict(tmp_path):
    import timm
    torch.manual_seed(4)
    reference = timm.create_model('convnext_atto', pretrained=False)
    path = tmp_path / 'convnext_atto.pth'
    torch.save(reference.state_dict(), path)           # 'stages.0...', 'head.fc...'
    model = _segmentor('tu-convnext_atto', encoder_ckpt=str(path))
    loaded = model.net.encoder.model
    assert torch.equal(loaded.stages_0.blocks[0].conv_dw.weight,
                       reference.stages[0].blocks[0].conv_dw.weight)
    assert torch.equal(loaded.stem_0.weight, reference.stem[0].weight)
    torch.save(timm.create_model('resnet18', pretrained=False).state_dict(), path)
    with pytest.raises(RuntimeError, match='convnext_atto.pth.*missing keys'):
        _segmentor('tu-convnext_atto', encoder_ckpt=str(path))


@pytest.mark.parametrize('encoder, expected', [
    ('tu-convnext_atto', r'copy that file to'),                     # timm's release URL
    ('resnet18', r'copy that file to'),                              # torchvision://resnet18
    ('tu-convnext_tiny', r"Hugging Face hub \('timm/convnext_tiny.*encoder_ckpt=PATH"),
])
def test_encoder_weights_imagenet_goes_through_the_weights_path_offline(
        encoder, expected, tmp_path, monkeypatch):
    monkeypatch.setenv('TORCH_HOME', str(tmp_path))
    monkeypatch.setattr('kdbench.utils.weights.download_url_to_file',
                        lambda *a, **k: (_ for _ in ()).throw(OSError('offline')))
    with pytest.raises((FileNotFoundError, ValueError), match=expected):
        _segmentor(encoder, encoder_weights='imagenet')


def test_evaluating_a_checkpoint_drops_encoder_weights():
    from kdbench.utils.weights import without_pretraining
    cfg = dict(type='DeepLabV3PlusSegmentor', encoder='tu-convnext_atto',
               encoder_weights='imagenet')
    assert without_pretraining(cfg)['encoder_weights'] is None


def test_timm_teacher_and_student_distil_with_feature_and_logit_methods(tmp_path):
    """tu-convnext_atto -> tu-resnet18: KD, CWD, AT and FitNet (last stages, both at
    stride 16) run one step with gradients reaching the student only."""
    import kdbench.distill  # noqa: F401
    from kdbench.testing import write_random_teacher
    norm = dict(type='ImgDataPreprocessor', mean=[128.0] * 3, std=[64.0] * 3)
    teacher = dict(type='DeepLabV3PlusSegmentor', encoder='tu-convnext_atto', num_classes=5,
                   data_preprocessor=norm)
    torch.manual_seed(0)
    distiller = MODELS.build(dict(
        type='Distiller', teacher=teacher,
        student=dict(type='DeepLabV3PlusSegmentor', encoder='tu-resnet18', num_classes=5,
                     data_preprocessor=norm),
        teacher_ckpt=write_random_teacher(teacher, str(tmp_path / 't.pth'), 1),
        methods=dict(kd=dict(type='KD', ignore_index=255), cwd=dict(type='CWD'),
                     at=dict(type='AT'), fitnet=dict(type='FitNet', taps=('last_stage',))))
    ).train()
    batch = distiller.student.example_batch(2, 64, torch.Generator().manual_seed(0))
    losses = distiller(**distiller.data_preprocessor(batch, True), mode='loss')
    assert {'loss_kd', 'loss_cwd', 'loss_at', 'loss_fitnet'} <= set(losses)
    sum(losses.values()).backward()
    assert all(torch.isfinite(v) for v in losses.values())
    assert distiller.student.net.encoder.model.layer4[0].conv1.weight.grad is not None
    assert all(p.grad is None for p in distiller.teacher.parameters())
