"""kdbench registries: one child of each mmengine root registry, in the ``kdbench`` scope.

Everything kdbench or a task plugin registers lives here; lookups fall back to mmengine
(optimizers, schedulers, hooks, samplers, ...). Configs set ``default_scope = 'kdbench'``
and load task plugins with ``custom_imports``.
"""
import contextlib
from typing import Iterator, Optional

from mmengine import registry as mm
from mmengine.registry import Registry


def _child(parent: Registry, locations=()) -> Registry:
    return Registry(parent.name, parent=parent, scope='kdbench', locations=list(locations))


RUNNERS = _child(mm.RUNNERS)
RUNNER_CONSTRUCTORS = _child(mm.RUNNER_CONSTRUCTORS)
LOOPS = _child(mm.LOOPS)
HOOKS = _child(mm.HOOKS, ['kdbench.hooks'])
STRATEGIES = _child(mm.STRATEGIES)
DATASETS = _child(mm.DATASETS, ['kdbench.holdout'])
DATA_SAMPLERS = _child(mm.DATA_SAMPLERS)
TRANSFORMS = _child(mm.TRANSFORMS)
MODELS = _child(mm.MODELS, ['kdbench.distill'])
MODEL_WRAPPERS = _child(mm.MODEL_WRAPPERS, ['kdbench.utils.distributed'])
WEIGHT_INITIALIZERS = _child(mm.WEIGHT_INITIALIZERS, ['kdbench.utils.weights'])
OPTIMIZERS = _child(mm.OPTIMIZERS)
OPTIM_WRAPPERS = _child(mm.OPTIM_WRAPPERS, ['kdbench.utils.amp', 'kdbench.hooks'])
OPTIM_WRAPPER_CONSTRUCTORS = _child(mm.OPTIM_WRAPPER_CONSTRUCTORS, ['kdbench.utils.param_groups'])
PARAM_SCHEDULERS = _child(mm.PARAM_SCHEDULERS)
METRICS = _child(mm.METRICS)
EVALUATOR = _child(mm.EVALUATOR)
TASK_UTILS = _child(mm.TASK_UTILS)
VISUALIZERS = _child(mm.VISUALIZERS)
VISBACKENDS = _child(mm.VISBACKENDS)
LOG_PROCESSORS = _child(mm.LOG_PROCESSORS)
INFERENCERS = _child(mm.INFERENCERS)
FUNCTIONS = _child(mm.FUNCTIONS)


class MethodRegistry(Registry):
    """mmengine's ``Registry`` whose entries can be removed again: :meth:`unregister`, and
    :meth:`temporarily` to register a class for the duration of a block (tests, trying
    out a method) without leaving it in the registry for whatever runs next."""

    def unregister(self, name: str) -> type:
        """Remove the class registered as ``name`` and return it; KeyError naming the
        registered ones when there is none."""
        if name not in self.module_dict:
            raise KeyError(f"No {self.name} is registered as '{name}' in {self.scope}; "
                           f'registered: {sorted(self.module_dict)}.')
        return self._module_dict.pop(name)

    @contextlib.contextmanager
    def temporarily(self, module: type, name: Optional[str] = None) -> Iterator[type]:
        """Register ``module`` as ``name`` (default: its class name) for the block, then
        unregister it. A name already taken raises mmengine's KeyError."""
        self.register_module(name=name, module=module)
        try:
            yield module
        finally:
            self.unregister(name or module.__name__)


#: Distillation methods (the users' "distillation hooks"), one file each in kdbench/distill.
DISTILL_METHODS = MethodRegistry('distillation method', scope='kdbench',
                                 locations=['kdbench.distill'])
