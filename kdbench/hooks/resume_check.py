"""Refuse to resume from a checkpoint written by another kind of run."""
from __future__ import annotations

from typing import Dict, Optional

from mmengine.config import Config
from mmengine.hooks import Hook

from kdbench.registry import HOOKS


def run_identity(cfg) -> Dict[str, str]:
    """What makes two configs the same kind of run: the model type, the task model (type
    and network), the distillation methods (``name=Type``) and the training dataset types
    (outer to inner for wrapped datasets)."""
    model = cfg.get('model') or {}
    task = model.get('student') or model
    net = task.get('net') or {}
    methods = model.get('methods') or {}
    datasets, dataset = [], (cfg.get('train_dataloader') or {}).get('dataset')
    while isinstance(dataset, dict):
        datasets.append(str(dataset.get('type')))
        dataset = dataset.get('dataset')
    parts = (task.get('type'), net.get('type'), task.get('encoder'))
    return {'model': str(model.get('type')),
            'task model': ' '.join(str(t) for t in parts if t),
            'methods': ', '.join(f'{name}={method["type"]}'
                                 for name, method in sorted(methods.items()) if method) or '-',
            'dataset': ' > '.join(datasets) or '-'}


def stored_config(checkpoint: dict) -> Optional[Config]:
    """The config an mmengine checkpoint was written with (``meta.cfg``), if readable."""
    text = (checkpoint.get('meta') or {}).get('cfg')
    if not isinstance(text, str):
        return None
    try:
        return Config.fromstring(text, file_format='.py')
    except Exception:  # an unreadable stored config cannot be compared
        return None


@HOOKS.register_module()
class ResumeCheckHook(Hook):
    """On ``--resume``, stop when the checkpoint's stored config describes another kind of
    run (:func:`run_identity`: model type, task model, methods, dataset) than the current
    config, naming both; ``tools/train.py --resume-any`` removes this hook. Loading
    weights with ``load_from`` (no resume) is not checked.
    """

    priority = 'VERY_HIGH'

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        if not runner.cfg.get('resume'):
            return
        saved = stored_config(checkpoint)
        if saved is None:
            runner.logger.warning('The checkpoint holds no readable config: resuming '
                                  'without checking that it comes from the same kind of run.')
            return
        before, now = run_identity(saved), run_identity(runner.cfg)
        differ = [key for key in now if before[key] != now[key]]
        if differ:
            rows = '\n'.join(f'  {key}: checkpoint {before[key]!r}, this config {now[key]!r}'
                             for key in differ)
            raise ValueError(
                f'Refusing to resume: the checkpoint was written by another kind of run '
                f'({", ".join(differ)} differ):\n{rows}\nResume with the config that wrote '
                'it, train into a new --work-dir, or pass --resume-any to resume anyway.')
