"""``--cfg-options`` that take effect, and top-level config keys that nothing reads.

mmengine configs are Python files: a top-level variable such as ``data_root`` or
``crop_size`` is read when the file is parsed, so overriding it afterwards changes nothing
by itself. :func:`apply_overrides` merges the options, then

* carries an override of ``data_root`` into every dataloader's ``data_root`` that held the
  config's value (train, val and test loaders, wrapped datasets included), or refuses it
  when no dataloader reads one;
* refuses overrides of other parse-time variables, naming the keys that hold their value;
* warns about overridden top-level keys that neither mmengine's Runner nor kdbench nor
  the config reads (a typo, ``--cfg-options totally_unknown.key=3``), or refuses them
  with ``strict=True``.

Keys a config file defines are not checked: configs keep helper variables (pipelines,
scene lists) that only other config files use.
"""
from __future__ import annotations

import warnings
from typing import Any, Iterator, List, Tuple

from mmengine.config import Config

#: Top-level keys mmengine's Runner reads (``Runner.from_cfg``, ``Runner.__init__``,
#: ``wrap_model``, ``train``, ``resume``) and the config loader's own.
RUNNER_KEYS = frozenset({
    'model', 'work_dir', 'train_dataloader', 'val_dataloader', 'test_dataloader',
    'train_cfg', 'val_cfg', 'test_cfg', 'auto_scale_lr', 'optim_wrapper', 'param_scheduler',
    'val_evaluator', 'test_evaluator', 'default_hooks', 'custom_hooks', 'data_preprocessor',
    'load_from', 'resume', 'launcher', 'env_cfg', 'log_processor', 'log_level', 'visualizer',
    'default_scope', 'randomness', 'experiment_name', 'model_wrapper_cfg', 'sync_bn',
    'find_unused_parameters', 'compile', 'activation_checkpointing', 'efficient_conv_bn_eval',
    'strategy', 'gpu_ids', 'custom_imports'})
#: Top-level keys kdbench itself reads: ``trust_checkpoint`` (load checkpoint files that
#: need more than a weights-only load; ``--trust-checkpoint``) and ``verbose_log`` (the
#: set-up log on the console too; ``--verbose``), both read by :class:`~kdbench.apis.KDRunner`,
#: and ``validation`` (the validation protocol, :mod:`kdbench.apis.validation`).
KDBENCH_KEYS: frozenset = frozenset({'trust_checkpoint', 'verbose_log', 'validation'})
KNOWN_KEYS = RUNNER_KEYS | KDBENCH_KEYS
#: Parse-time variables whose override is carried into the dataloaders.
PROPAGATED = ('data_root',)


class UnknownConfigKeyWarning(UserWarning):
    """A top-level config key that nothing reads."""


def _walk(node: Any, path: str = '') -> Iterator[Tuple[str, Any, Any, Any]]:
    """``(dotted path, container, key, value)`` of every entry under ``node``."""
    items = node.items() if isinstance(node, dict) else \
        enumerate(node) if isinstance(node, (list, tuple)) else ()
    for key, value in items:
        here = f'{path}.{key}' if path else str(key)
        yield here, node, key, value
        yield from _walk(value, here)


def keys_holding(cfg: Config, value: Any) -> List[str]:
    """Dotted keys (list items by index) under the known top-level keys whose value
    equals ``value``."""
    return [path for path, _, _, found in _walk(cfg._cfg_dict)
            if path.split('.')[0] in KNOWN_KEYS and type(found) is type(value) and
            found == value]


def propagate(cfg: Config, name: str, old: Any, new: Any) -> List[str]:
    """Set every dataloader entry ``name`` that holds ``old`` to ``new``; returns the keys."""
    changed = []
    for loader in [k for k in cfg.keys() if k.endswith('_dataloader')]:
        for path, container, key, value in _walk(cfg[loader], loader):
            if key == name and value == old:
                container[key] = new
                changed.append(path)
    return changed


def apply_overrides(cfg: Config, options: dict, strict: bool = False) -> None:
    """Merge ``--cfg-options`` into ``cfg`` so that each one takes effect (see the module
    docstring); ``strict`` refuses top-level keys that nothing reads."""
    variables = {k: cfg[k] for k in cfg.keys() if k not in KNOWN_KEYS}
    cfg.merge_from_dict(options)
    path = cfg.filename or 'the config'
    overridden = {key.split('.')[0] for key in options}
    for name in sorted(overridden - KNOWN_KEYS):
        if name in PROPAGATED:
            changed = propagate(cfg, name, variables.get(name), cfg[name])
            if not changed:
                raise ValueError(f'--cfg-options {name}={cfg[name]} changes nothing: no '
                                 f'dataloader of {path} reads a {name} (its datasets do not '
                                 'read files from a folder).')
        elif name in variables:
            used = keys_holding(cfg, variables[name]) or ['(none)']
            raise ValueError(f"--cfg-options {name}=... changes nothing: '{name}' is a "
                             f'variable of {path} read when the file is parsed. Override the '
                             f'keys that hold its value instead: {", ".join(used)}.')
        else:
            message = (f"--cfg-options sets the top-level key '{name}', which nothing reads "
                       '(not a key of the Runner or kdbench, nor a variable of the config): '
                       'check its spelling.')
            if strict:
                raise ValueError(message + ' (refused by --strict-config)')
            warnings.warn(message, UnknownConfigKeyWarning, stacklevel=3)
