"""The grid of a sweep (``tools/sweep.py --grid KEY=V1,V2,...``), checked against a config.

Every check runs before any training: the key must be a key of the config (dotted, list
items by index), not one the sweep sets itself nor one of ``--cfg-options``; each value is
parsed to the type of the config's value (int, float, bool or str; an int is accepted for
a float); a key needs at least two distinct values.
"""
from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Any, Dict, List, Sequence, Tuple
from urllib.parse import quote

from mmengine.config import Config

from kdbench.apis.overrides import _walk

#: Keys the sweep sets on every trial: they are not swept.
RESERVED = {'validation': 'the sweep trains on the held-out split and retrains with --final',
            'work_dir': 'each trial has its own, under --work-dir',
            'randomness.seed': 'use --seeds', 'experiment_name': 'set per trial',
            'launcher': 'trials train in this process'}
_BOOLS = {'true': True, 'false': False}


class GridError(ValueError):
    """A ``--grid`` option the config cannot take; raised before any training."""


@dataclass(frozen=True)
class Axis:
    """One swept key: its values (parsed to the config's type) in the order given."""
    key: str
    values: Tuple[Any, ...]

    @property
    def texts(self) -> Tuple[str, ...]:
        return tuple(format_value(v) for v in self.values)


def format_value(value: Any) -> str:
    """The text of a grid value in trial names and tables (``1.0``, ``10``, ``True``)."""
    return repr(value) if isinstance(value, float) else str(value)


def setting_name(axes: Sequence[Axis], setting: Sequence[Any]) -> str:
    """``key1=v1,key2=v2``: a setting (one value per axis) as trial names show it."""
    return ','.join(f'{a.key}={format_value(v)}' for a, v in zip(axes, setting))


def setting_folder(axes: Sequence[Axis], setting: Sequence[Any]) -> str:
    """:func:`setting_name` as a folder name (``/`` and other unsafe characters quoted)."""
    return quote(setting_name(axes, setting), safe='=,.-_+:')


def config_keys(cfg: Config) -> Dict[str, Any]:
    """Every dotted key of ``cfg`` (list items by index) -> its value."""
    return {path: value for path, _, _, value in _walk(cfg._cfg_dict)}


def _close_matches(key: str, known: Sequence[str]) -> List[str]:
    last = key.split('.')[-1]
    same_end = [k for k in known if k.split('.')[-1] == last]
    return list(dict.fromkeys(same_end[:3] + difflib.get_close_matches(key, known, n=3)))


def parse_value(key: str, text: str, current: Any, path: str, option: str = '--grid') -> Any:
    """``text`` as the type of the config's value ``current`` of ``key`` (``option``: where
    the grid was given, for messages)."""
    kind = type(current).__name__
    article = 'an' if kind[0] in 'aeiou' else 'a'
    try:
        if isinstance(current, bool):
            return _BOOLS[text.lower()]
        if isinstance(current, int):
            return int(text)
        if isinstance(current, float):
            return float(text)
    except (KeyError, ValueError):
        hint = '; use true or false' if kind == 'bool' else ''
        raise GridError(f"{option} {key}: value '{text}' is not {article} {kind} ({path} has "
                        f'{key} = {current!r}){hint}.') from None
    if isinstance(current, str):
        return text
    raise GridError(f'{option} {key}: {path} has {key} = {current!r} ({kind}); only keys '
                    'with an int, float, bool or str value can be swept.')


def parse_grid(cfg: Config, specs: Sequence[str], cfg_options: Dict[str, Any],
               option: str = '--grid') -> List[Axis]:
    """The axes of ``--grid KEY=V1,V2,...`` options (in the order given) for ``cfg`` (the
    config with ``cfg_options`` applied); :class:`GridError` names the first bad one
    (``option``: where the grid was given, e.g. a suite's ``grids`` entry)."""
    path = cfg.filename or 'the config'
    known = config_keys(cfg)
    axes: List[Axis] = []
    if not specs:
        raise GridError('Give at least one --grid KEY=V1,V2,... (e.g. --grid '
                        'model.methods.kd.loss_weight=0.5,1,2).')
    for spec in specs:
        key, sep, values = spec.partition('=')
        key = key.strip()
        texts = [t.strip() for t in values.split(',')]
        if not sep or not key or not all(texts):
            raise GridError(f"{option} '{spec}': expected KEY=V1,V2,... (values separated by "
                            'commas, none empty).')
        reserved = next((k for k in RESERVED if key == k or key.startswith(k + '.')), None)
        if reserved:
            raise GridError(f'{option} {key}: the sweep sets {reserved} itself '
                            f'({RESERVED[reserved]}).')
        if key in (a.key for a in axes):
            raise GridError(f'{option} {key} is given twice: give all its values at once.')
        if key in cfg_options:
            raise GridError(f'{option} {key} is also in --cfg-options: leave it out of one.')
        if key not in known:
            close = _close_matches(key, list(known))
            raise GridError(f"{option} {key}: {path} has no key '{key}'"
                            + (f'; close matches: {", ".join(close)}.' if close else '.'))
        parsed = [parse_value(key, text, known[key], path, option) for text in texts]
        distinct = list(dict.fromkeys(parsed))
        if len(distinct) < 2:
            raise GridError(f'{option} {key}: {len(distinct)} distinct value ({texts}); a sweep '
                            'compares at least two. To set one value, use --cfg-options '
                            f'{key}={texts[0]}.')
        if len(distinct) < len(parsed):
            raise GridError(f'{option} {key}: values {texts} repeat one value; give each once.')
        axes.append(Axis(key, tuple(parsed)))
    return axes
