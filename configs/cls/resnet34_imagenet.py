# Teacher: torchvision ResNet-34 on ImageNet. The benchmark uses torchvision's
# IMAGENET1K_V1 weights (73.31 top-1 per torchvision) as the teacher; this config
# trains or evaluates it. Evaluate the downloaded file with:
#   python tools/test.py configs/cls/resnet34_imagenet.py checkpoints/resnet34-b627a593.pth
_base_ = ['../_base_/datasets/imagenet.py', '../_base_/schedules/imagenet_100e.py',
          '../_base_/default_runtime.py']
model = dict(type='ImageClassifier', net=dict(type='tv_resnet34', num_classes=1000),
             data_preprocessor={{_base_.data_preprocessor}})
default_hooks = dict(checkpoint=dict(max_keep_ckpts=3))
