"""Label embeddings (cache, one-hot fallback, the packaged MiniLM model) and FSS/RS."""
import os

import pytest
import torch

from kdbench.explain.labels import cache_path, label_embeddings
from kdbench.explain.scores import explain_batch, image_classes, tap_features
from kdbench.registry import MODELS


class CountingEncoder:
    def __init__(self):
        self.calls = 0

    def __call__(self, names):
        self.calls += 1
        return torch.stack([torch.tensor([float(len(n)), float(i), 1.0])
                            for i, n in enumerate(names)])


def test_onehot_embeddings_need_no_model(tmp_path):
    assert torch.equal(label_embeddings(['a', 'b', 'c'], 'onehot', str(tmp_path)), torch.eye(3))
    assert not os.listdir(tmp_path)


def test_embeddings_are_cached_per_list_of_names(tmp_path):
    encoder = CountingEncoder()
    first = label_embeddings(['cat', 'dog'], cache_dir=str(tmp_path), encoder=encoder)
    again = label_embeddings(['cat', 'dog'], cache_dir=str(tmp_path), encoder=encoder)
    assert encoder.calls == 1 and torch.equal(first, again) and first.shape == (2, 3)
    assert os.path.isfile(cache_path(['cat', 'dog'], str(tmp_path)))
    swapped = label_embeddings(['dog', 'cat'], cache_dir=str(tmp_path), encoder=encoder)
    assert encoder.calls == 2 and swapped[0, 0] == 3 and swapped[0, 1] == 0
    label_embeddings(['cat', 'dog'], cache_dir=None, encoder=encoder)
    assert encoder.calls == 3


def test_bad_label_embedding_requests_are_refused(tmp_path):
    with pytest.raises(ValueError, match="Unknown label embeddings 'bert'"):
        label_embeddings(['a'], 'bert')
    with pytest.raises(ValueError, match=r'expected \[K, D\]'):
        label_embeddings(['a', 'b'], cache_dir=str(tmp_path), encoder=lambda n: torch.ones(3, 4))


@pytest.mark.slow
def test_packaged_minilm_embeds_class_names_offline(tmp_path):
    emb = label_embeddings(['cat', 'dog', 'truck'], cache_dir=str(tmp_path))
    assert emb.shape == (3, 384)
    torch.testing.assert_close(emb.norm(dim=1), torch.ones(3))
    assert float(emb[0] @ emb[1]) > float(emb[0] @ emb[2])     # cat is nearer dog than truck


def test_image_classes_of_label_maps_skip_the_background():
    maps = torch.tensor([[[0, 0, 0], [0, 2, 2]],
                         [[0, 0, 255], [255, 0, 0]],     # background only (and ignore)
                         [[1, 1, 3], [3, 3, 0]]])
    assert image_classes(maps, 4, skip=[0]).tolist() == [2, 0, 3]
    assert image_classes(maps, 4).tolist() == [0, 0, 3]
    assert image_classes(torch.tensor([3, 1]), 4).tolist() == [3, 1]


def _classifier(seed: int):
    torch.manual_seed(seed)
    net = dict(type='resnet8', num_classes=5)
    return MODELS.build(dict(type='ImageClassifier', net=net)).eval()


@pytest.fixture(scope='module')
def batch():
    g = torch.Generator().manual_seed(0)
    classes = torch.tensor([0, 1, 2, 3, 4, 0, 1, 2])
    return torch.randn(8, 3, 16, 16, generator=g), classes, torch.eye(5)[classes]


@pytest.mark.parametrize('keep', [0.5, None])
def test_fss_of_a_model_with_itself_is_one(batch, keep):
    model = _classifier(0)
    scores, maps = explain_batch({'student': model, 'base': model}, *batch, 'stage2', keep=keep)
    assert scores['fss'] == pytest.approx(1.0, abs=1e-5)
    assert scores['rs_student'] == pytest.approx(scores['rs_base'], abs=1e-6)
    assert set(maps) == {'student', 'base', 'distilled', 'residual'}
    assert ('rs_distilled' in scores) == (keep is not None)


def test_scores_of_two_models(batch):
    inputs, classes, embeddings = batch
    student, base, teacher = _classifier(1), _classifier(2), _classifier(3)
    models = {'student': student, 'base': base, 'teacher': teacher}
    scores, maps = explain_batch(models, inputs, classes, embeddings, 'stage3')
    assert set(scores) == {'fss', 'rs_student', 'rs_base', 'rs_teacher', 'rs_distilled',
                           'rs_residual'}
    assert 0.0 < scores['fss'] < 0.999
    assert all(m.shape == (8, 16, 16) for m in maps.values())
    # the raw-image RS is plain dCor^2 of the features with the label embeddings
    raw, _ = explain_batch(models, inputs, classes, embeddings, 'stage3', keep=None)
    from kdbench.explain.functional import distance_correlation_sqr
    expected = distance_correlation_sqr(tap_features(student, inputs, 'stage3'), embeddings)
    assert raw['rs_student'] == pytest.approx(float(expected), abs=1e-6)
    assert raw['rs_student'] != pytest.approx(scores['rs_student'], abs=1e-6)
