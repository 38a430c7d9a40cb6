"""Where each member of a cohort goes on: ``tools/train_cohort.py --resume auto``.

A cohort job that is requeued restarts with the same command. Each member continues its
latest checkpoint (its work dir's ``last_checkpoint``) or starts a new run when it has
none; a member whose latest checkpoint is its last epoch's and that wrote its
``final_metrics.json`` has finished and is left out (one stopped before, e.g. during its
last validation, resumes there and only ends its run: validation, final metrics).
Members train in step, but a cohort stopped while its members were writing their epoch's
checkpoints one after another leaves some an epoch ahead: all resume from the epoch the
furthest-behind member reached (the ones ahead from their checkpoint of that epoch), so
that they start together, as a cohort must (:class:`~kdbench.apis.cohort.Cohort`).
"""
from __future__ import annotations

import os
import re
from typing import List, Optional, Sequence, Tuple

from mmengine.config import Config

from kdbench.hooks.final_metrics import FILE_NAME as FINAL_METRICS

from .cohort_check import member_name
from .cohort_runner import CohortError
from .preflight import resume_checkpoint

_EPOCH_FILE = re.compile(r'epoch_(\d+)\.pth$')


def _latest_epoch(cfg: Config) -> Tuple[Optional[str], int]:
    """The member's latest checkpoint and its epoch (``(None, 0)`` when there is none)."""
    latest = resume_checkpoint(cfg.work_dir, required=False)
    if latest is None:
        return None, 0
    found = _EPOCH_FILE.search(os.path.basename(latest))
    if found is None:
        raise CohortError(f'{member_name(cfg)}: --resume auto continues epoch checkpoints '
                          f'(epoch_N.pth), but {cfg.work_dir}/last_checkpoint names {latest}; '
                          'resume this member alone (tools/train.py --resume).')
    return latest, int(found.group(1))


def auto_resume(cfgs: Sequence[Config]) -> Tuple[List[Config], List[Config]]:
    """Set each unfinished member of ``cfgs`` to resume (``cfg.resume``, ``cfg.load_from``)
    from the epoch every unfinished member reached, or to start anew when one has no
    checkpoint. Returns ``(members to train, finished members)``. Raises
    :class:`~kdbench.apis.cohort_runner.CohortError` when a member ahead no longer has
    the checkpoint of that epoch (``max_keep_ckpts`` removed it)."""
    finished, training = [], []
    for cfg in cfgs:
        path, epoch = _latest_epoch(cfg)
        if epoch >= cfg.train_cfg.max_epochs and \
                os.path.isfile(os.path.join(cfg.work_dir, FINAL_METRICS)):
            finished.append(cfg)
        else:
            training.append((cfg, path, epoch))
    start = min((epoch for _, _, epoch in training), default=0)
    for cfg, path, epoch in training:
        if start == 0:
            continue
        checkpoint = path if epoch == start else os.path.join(os.path.dirname(path),
                                                              f'epoch_{start}.pth')
        if not os.path.isfile(checkpoint):
            reached = ', '.join(f'{c.work_dir}: epoch {e}' for c, _, e in training)
            raise CohortError(
                f'{member_name(cfg)}: --resume auto: the members stopped at different epochs '
                f'({reached}) and {checkpoint} is gone; resume every member from one epoch '
                '(train the ones behind alone to it first), or keep more checkpoints '
                '(default_hooks.checkpoint.max_keep_ckpts).')
        cfg.resume, cfg.load_from = True, checkpoint
    return [cfg for cfg, _, _ in training], finished
