# DeepLabV3+ (output stride 16) on VOC aug with the segmentation schedule: what the teacher
# and the student baselines share; each leaf sets the encoder and its ImageNet file.
_base_ = ['../../_base_/datasets/voc_aug.py', '../../_base_/schedules/seg_poly_100e.py',
          '../../_base_/default_runtime.py']
model = dict(type='DeepLabV3PlusSegmentor', num_classes=21, output_stride=16,
             data_preprocessor={{_base_.data_preprocessor}})
