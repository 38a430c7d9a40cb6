"""Loading configs the way every tool does, and deriving the task-model config."""
from __future__ import annotations

import os
from typing import Optional

from mmengine.config import Config, ConfigDict

from .overrides import apply_overrides


def load_config(path: str, cfg_options: Optional[dict] = None,
                work_dir: Optional[str] = None, launcher: str = 'none',
                strict: bool = False) -> Config:
    """Read ``path``, apply ``--cfg-options`` and set ``work_dir`` and ``launcher``.

    Overrides take effect or are refused (``data_root`` reaches every dataloader; see
    :func:`~kdbench.apis.overrides.apply_overrides`); top-level keys that nothing reads
    give a warning, or a ``ValueError`` with ``strict`` (``--strict-config``). The work dir
    defaults to ``work_dirs/<config file name>``.
    """
    if not os.path.isfile(path):
        raise FileNotFoundError(f"Config file '{path}' not found.")
    cfg = Config.fromfile(path)
    apply_overrides(cfg, cfg_options or {}, strict)
    if work_dir is not None:
        cfg.work_dir = work_dir
    elif cfg.get('work_dir') is None:
        cfg.work_dir = os.path.join('work_dirs', os.path.splitext(os.path.basename(path))[0])
    cfg.launcher = launcher
    return cfg


def task_model_cfg(model_cfg: ConfigDict) -> ConfigDict:
    """The plain task model of a config: the student of a Distiller config, else itself.

    The student inherits the Distiller's data preprocessor, so a distillation config can
    be used to evaluate its student without building the teacher.
    """
    if 'student' not in model_cfg:
        return model_cfg
    student = ConfigDict(model_cfg['student'])
    if model_cfg.get('data_preprocessor') is not None:
        student['data_preprocessor'] = model_cfg['data_preprocessor']
    return student
