"""Refuse to resume from a checkpoint written by another kind of run, or with optimizer,
schedule or batch settings that differ from the checkpoint's."""
from __future__ import annotations

from typing import Dict, List, Optional

from mmengine.config import Config
from mmengine.hooks import Hook

from kdbench.registry import HOOKS

from .resume_settings import RESUMABLE, SettingChange, setting_changes


class ResumeMismatchError(ValueError):
    """``--resume`` would continue a checkpoint of another kind of run, or with settings
    that differ from its run's; the message names each difference and what to do."""


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


def allow_any_resume(cfg) -> None:
    """What ``tools/train.py --resume-any`` does: the resume check of ``cfg`` (when it has
    one) warns about the differences instead of stopping."""
    if cfg.get('default_hooks', {}).get('resume_check'):
        cfg.default_hooks.resume_check['resume_any'] = True


def _settings_refusal(changes: List[SettingChange]) -> str:
    rows = '\n'.join(f'  {c.describe()}; '
                     + ('the checkpoint\'s state would be used' if c.from_checkpoint else
                        'would be used, on a run whose lr and schedule were set for the '
                        'checkpoint\'s value') for c in changes)
    pin = [f'{c.key}={c.checkpoint!r}' for c in changes if c.note.startswith('unset')]
    extend = (f'\nTo train longer on the checkpoint\'s schedule, name its end: '
              f'--cfg-options {" ".join(pin)}.' if pin else '')
    resumable = ', '.join(k.split('.', 1)[1] for k in RESUMABLE)
    return (f'Refusing to resume: {len(changes)} optimizer, schedule or batch setting(s) '
            f'differ from the checkpoint\'s run:\n{rows}\nA resumed run continues the '
            f'checkpoint\'s optimizer and scheduler state; of train_cfg only {resumable} may '
            'change.' + extend + '\nResume with the checkpoint\'s values (drop these '
            '--cfg-options or config edits), train into a new --work-dir to start a run with '
            'these settings, or pass --resume-any to resume anyway (the checkpoint\'s state '
            'then replaces the values marked so).')


def _settings_warning(changes: List[SettingChange]) -> str:
    ignored = [f'{c.key} (this config {c.config!r}, the checkpoint\'s run {c.checkpoint!r})'
               for c in changes if c.from_checkpoint]
    used = [f'{c.key}={c.config!r} (the checkpoint\'s run: {c.checkpoint!r})'
            for c in changes if not c.from_checkpoint]
    return ('Resuming with settings that differ from the checkpoint\'s run (--resume-any).'
            + (f' NOT used, the checkpoint\'s optimizer/scheduler state is: '
               f'{"; ".join(ignored)}.' if ignored else '')
            + (f' Used from the resumed iteration on: {"; ".join(used)}.' if used else ''))


@HOOKS.register_module()
class ResumeCheckHook(Hook):
    """On ``--resume``, before any state is loaded, stop with :class:`ResumeMismatchError`
    when the checkpoint's stored config describes another kind of run
    (:func:`run_identity`: model type, task model, methods, dataset) than the current
    config, or differs in optimizer, schedule or batch settings
    (:func:`~kdbench.hooks.resume_settings.setting_changes`), naming each difference with
    both values. With ``resume_any`` (``tools/train.py --resume-any``) it warns instead,
    naming the settings whose config value the checkpoint's state replaces. Loading
    weights with ``load_from`` (no resume) is not checked.
    """

    priority = 'VERY_HIGH'

    def __init__(self, resume_any: bool = False):
        self.resume_any = resume_any

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
        rows = '\n'.join(f'  {key}: checkpoint {before[key]!r}, this config {now[key]!r}'
                         for key in differ)
        changes = setting_changes(saved, runner.cfg)
        if self.resume_any:
            if differ:
                runner.logger.warning('Resuming a checkpoint of another kind of run '
                                      f'(--resume-any):\n{rows}')
            if changes:
                runner.logger.warning(_settings_warning(changes))
            return
        if differ:
            raise ResumeMismatchError(
                f'Refusing to resume: the checkpoint was written by another kind of run '
                f'({", ".join(differ)} differ):\n{rows}\nResume with the config that wrote '
                'it, train into a new --work-dir, or pass --resume-any to resume anyway.')
        if changes:
            raise ResumeMismatchError(_settings_refusal(changes))
