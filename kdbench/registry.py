"""kdbench registries: children of mmengine's root registries.

Everything kdbench or a task plugin registers lives in the ``kdbench`` scope; lookups
fall back to mmengine's registries (optimizers, schedulers, hooks, samplers, ...).
Configs set ``default_scope = 'kdbench'`` and load task plugins with ``custom_imports``.
"""
from mmengine.registry import DATASETS as MMENGINE_DATASETS
from mmengine.registry import HOOKS as MMENGINE_HOOKS
from mmengine.registry import METRICS as MMENGINE_METRICS
from mmengine.registry import MODEL_WRAPPERS as MMENGINE_MODEL_WRAPPERS
from mmengine.registry import MODELS as MMENGINE_MODELS
from mmengine.registry import TRANSFORMS as MMENGINE_TRANSFORMS
from mmengine.registry import Registry

MODELS = Registry('model', parent=MMENGINE_MODELS, scope='kdbench',
                  locations=['kdbench.distill'])
#: Distillation methods (the users' "distillation hooks"): one file each in kdbench/distill.
DISTILL_METHODS = Registry('distillation method', scope='kdbench',
                           locations=['kdbench.distill'])
DATASETS = Registry('dataset', parent=MMENGINE_DATASETS, scope='kdbench')
TRANSFORMS = Registry('transform', parent=MMENGINE_TRANSFORMS, scope='kdbench')
METRICS = Registry('metric', parent=MMENGINE_METRICS, scope='kdbench',
                   locations=['kdbench.evaluation'])
HOOKS = Registry('hook', parent=MMENGINE_HOOKS, scope='kdbench', locations=['kdbench.hooks'])
MODEL_WRAPPERS = Registry('model_wrapper', parent=MMENGINE_MODEL_WRAPPERS, scope='kdbench')
