"""Every unreadable checkpoint is named: a real checkpoint cut at every 2% of its size, a
zip with a missing record and files holding no dict stop with ``CorruptCheckpointError``
naming the file, through the loader and through each tool that reads one (the teacher and
``--resume`` of tools/train.py, tools/test.py, tools/export_student.py)."""
import os
import pickle
import runpy
import sys
import zipfile

import numpy as np
import pytest
import torch
from mmengine.logging import MessageHub
from shared_setup import ROOT

from kdbench.registry import MODELS
from kdbench.utils.checkpoint import CorruptCheckpointError, load_local_checkpoint

RESNET8 = dict(type='ImageClassifier', net=dict(type='resnet8', num_classes=10))


@pytest.fixture(scope='module')
def runner_checkpoint(tmp_path_factory):
    """The bytes of what a Runner saves for a resnet8 classifier after one SGD step:
    ``meta`` (numpy seed and generator state), ``state_dict``, ``optimizer`` (momentum
    buffers) and ``message_hub`` (HistoryBuffers)."""
    torch.manual_seed(0)
    model = MODELS.build(RESNET8)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    model(torch.randn(2, 3, 32, 32), mode='tensor').sum().backward()
    optimizer.step()
    hub = MessageHub('unreadable-test')
    hub.update_scalar('train/loss', 2.3)
    path = tmp_path_factory.mktemp('ckpt') / 'epoch_1.pth'
    torch.save(dict(meta=dict(epoch=1, iter=10, seed=np.int64(3),
                              numpy_state=np.random.RandomState(0).get_state()),
                    state_dict=model.state_dict(), optimizer=optimizer.state_dict(),
                    message_hub=hub.state_dict()), path)
    assert load_local_checkpoint(str(path))['meta']['epoch'] == 1     # the whole file loads
    return path.read_bytes()


def _cut(tmp_path, data, size, name='cut.pth'):
    path = tmp_path / name
    path.write_bytes(data[:size])
    return str(path)


def test_a_checkpoint_cut_at_every_two_percent_is_named(tmp_path, runner_checkpoint):
    data = runner_checkpoint
    sizes = sorted({len(data) * percent // 100 for percent in range(0, 100, 2)} |
                   {10_000, 50_000, len(data) - 1})
    for size in sizes:
        path = _cut(tmp_path, data, size)
        with pytest.raises(CorruptCheckpointError) as err:
            load_local_checkpoint(path)
        assert f"'{path}' is truncated or corrupt" in str(err.value), size
        assert 'Copy or download it again' in str(err.value), size


def _rewritten(source: bytes, target, skip: str):
    """The zip archive ``source`` written to ``target`` without its records ending in
    ``skip``."""
    source_path = str(target) + '.src'
    with open(source_path, 'wb') as f:
        f.write(source)
    with zipfile.ZipFile(source_path) as zin, zipfile.ZipFile(target, 'w') as zout:
        records = [info for info in zin.infolist() if not info.filename.endswith(skip)]
        assert len(records) < len(zin.infolist())
        for info in records:
            zout.writestr(info, zin.read(info))
    return str(target)


@pytest.mark.parametrize('record', ['/data/0', '/data.pkl'])
def test_a_zip_with_a_missing_record_is_named(tmp_path, runner_checkpoint, record):
    path = _rewritten(runner_checkpoint, tmp_path / 'missing.pth', record)
    with pytest.raises(CorruptCheckpointError, match=rf"'{path}' is truncated or corrupt.*"
                       f"{record.lstrip('/')}"):
        load_local_checkpoint(path)


@pytest.mark.parametrize('content, found', [
    ([1, 2, 3], 'a list of 3 items'), (torch.ones(2, 3), r'a tensor of shape \(2, 3\)'),
    ((torch.ones(1),), 'a tuple of 1 items')])
def test_a_file_holding_no_dict_is_named_with_what_it_holds(tmp_path, content, found):
    path = tmp_path / 'odd.pth'
    torch.save(content, path)
    with pytest.raises(CorruptCheckpointError,
                       match=rf"'{path}' holds {found}, not a checkpoint dict"):
        load_local_checkpoint(str(path))
    plain = tmp_path / 'plain.pkl'                     # pickle.dump, not torch.save
    plain.write_bytes(pickle.dumps(content))
    with pytest.raises(CorruptCheckpointError, match=rf"'{plain}' is truncated or corrupt"):
        load_local_checkpoint(str(plain))


def _tool(monkeypatch, script, *args):
    """Run ``tools/<script>`` in this process as ``python tools/<script> ARGS``."""
    monkeypatch.setattr(sys, 'argv', [script, *map(str, args)])
    monkeypatch.chdir(ROOT)
    runpy.run_path(os.path.join(ROOT, 'tools', script), run_name='__main__')


QUIET = 'log_level=WARNING'


def test_tools_name_a_truncated_teacher_resume_test_and_export_file(tmp_path, monkeypatch,
                                                                    runner_checkpoint):
    # The 10 KB and 50 KB cuts: a bare ``OSError: [Errno 22]`` before.
    small = _cut(tmp_path, runner_checkpoint, 10_000, 'small.pth')
    large = _cut(tmp_path, runner_checkpoint, 50_000, 'large.pth')
    named = r"'{}' is truncated or corrupt"
    with pytest.raises(CorruptCheckpointError, match=named.format(small)):
        _tool(monkeypatch, 'train.py', 'configs/demo/kd_resnet20_resnet8_digits.py',
              '--work-dir', tmp_path / 'teacher', '--cfg-options', QUIET,
              f'model.teacher_ckpt={small}')
    with pytest.raises(CorruptCheckpointError, match=named.format(large)):
        _tool(monkeypatch, 'train.py', 'configs/demo/resnet8_digits.py', '--work-dir',
              tmp_path / 'resume', '--resume', large, '--cfg-options', QUIET)
    with pytest.raises(CorruptCheckpointError, match=named.format(small)):
        _tool(monkeypatch, 'test.py', 'configs/demo/resnet8_digits.py', small, '--work-dir',
              tmp_path / 'test', '--cfg-options', QUIET)
    with pytest.raises(CorruptCheckpointError, match=named.format(large)):
        _tool(monkeypatch, 'export_student.py', large, tmp_path / 'student.pth')
    assert not (tmp_path / 'student.pth').exists()


def test_export_names_a_pickled_list(tmp_path, monkeypatch):
    torch.save([torch.ones(1)], tmp_path / 'list.pth')
    with pytest.raises(CorruptCheckpointError, match=r"list.pth' holds a list of 1 items"):
        _tool(monkeypatch, 'export_student.py', tmp_path / 'list.pth', tmp_path / 'out.pth')


def test_a_damaged_label_embedding_cache_is_computed_again(tmp_path):
    from kdbench.explain.labels import cache_path, label_embeddings
    calls = []

    def encoder(names):
        calls.append(names)
        return torch.ones(len(names), 4)
    label_embeddings(['cat', 'dog'], cache_dir=str(tmp_path), encoder=encoder)
    path = cache_path(['cat', 'dog'], str(tmp_path))
    with open(path, 'r+b') as f:                   # an interrupted copy of the cache
        f.truncate(os.path.getsize(path) // 2)
    assert torch.equal(label_embeddings(['cat', 'dog'], cache_dir=str(tmp_path),
                                        encoder=encoder), torch.ones(2, 4))
    assert len(calls) == 2 and load_local_checkpoint(path)['names'] == ['cat', 'dog']
