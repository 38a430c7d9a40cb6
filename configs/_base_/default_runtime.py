# Runtime shared by every kdbench config.
default_scope = 'kdbench'

default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=50),
    param_scheduler=dict(type='ParamSchedulerHook'),
    checkpoint=dict(type='CheckpointHook', interval=1, max_keep_ckpts=2,
                    save_best='auto', rule='greater'),
    sampler_seed=dict(type='DistSamplerSeedHook'),
    random_state=dict(type='RandomStateHook'),       # exact resume (kdbench.hooks)
    resume_check=dict(type='ResumeCheckHook'),       # --resume: same method/task/dataset
    # exact resume from a checkpoint written before its epoch's validation (kdbench.hooks)
    resume_validation=dict(type='ResumeValidationHook'),
    environment=dict(type='EnvironmentRecordHook'),  # environment.json in the log dir
    # distributed runs: stop every rank when one makes no progress for stall_limit s
    watchdog=dict(type='StallWatchdogHook', stall_limit=1200),
)
# Stop at the first NaN/inf loss term, before a checkpoint of the bad weights is written
# (kdbench/hooks/nonfinite.py). To skip such steps instead, set
# optim_wrapper.type='NonFiniteSkipOptimWrapper' (stops after max_consecutive_skips=10).
# TeacherMetricHook: distillation runs log the teacher's validation metrics beside the
# student's (val/teacher/*), evaluating the teacher once per checkpoint and validation
# setup (cached in work_dirs/teacher_metrics.json, or $KDBENCH_CACHE_DIR; kdbench/hooks).
# MethodProgressHook: methods see the epoch/iteration (DKD's warm-up; kdbench/hooks).
custom_hooks = [dict(type='NonFiniteLossGuard'), dict(type='TeacherMetricHook'),
                dict(type='MethodProgressHook')]
env_cfg = dict(cudnn_benchmark=False,
               mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0),
               # timeout: seconds a collective may wait (process group; docs/distributed.md)
               dist_cfg=dict(backend='nccl', timeout=1800))
# DDP (torchrun/slurm, or CPU processes with gloo): the teacher stays out of gradient sync;
# no find_unused_parameters (every trained parameter gets a gradient every step).
model_wrapper_cfg = dict(type='kdbench.KDDistributedDataParallel', broadcast_buffers=False,
                         find_unused_parameters=False)
log_processor = dict(by_epoch=True, window_size=50)
log_level = 'INFO'
load_from = None
resume = False
randomness = dict(seed=0)
