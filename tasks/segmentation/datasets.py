"""Segmentation datasets: Pascal VOC 2012 + SBD (aug) and COCO-Stuff-10k v1.1, read from
their official layouts. Every sample is
``dict(inputs=uint8 [3, H, W] RGB, data_samples=dict(label=int64 [H, W]))`` with label
values in ``[0, K)`` or 255 (ignore). Pipelines only resize, crop, flip and blur: the
ImageNet mean/std normalisation is done on the device by the model's data preprocessor
(``ImgDataPreprocessor``), as in the classification task.

Each sample's size and label range are checked when it is loaded (not at init: 10k files);
``check_sample(index)`` runs the same checks without the pipeline, for dataset checkers.
"""
from __future__ import annotations

import contextlib
import io
import os
from typing import Dict, Iterator, List, Optional, Sequence, Tuple

import cv2
import numpy as np
import torch
from PIL import Image

from kdbench.data_contract import KDDataset
from kdbench.registry import DATASETS

from .transforms import IGNORE_INDEX, build_seg_pipeline

VOC_CLASSES = ('background', 'aeroplane', 'bicycle', 'bird', 'boat', 'bottle', 'bus', 'car',
               'cat', 'chair', 'cow', 'diningtable', 'dog', 'horse', 'motorbike', 'person',
               'pottedplant', 'sheep', 'sofa', 'train', 'tvmonitor')

# COCO-Stuff ids 1..182 in order: 91 things (with the 11 COCO never annotated), 91 stuff.
COCOSTUFF_CLASSES = (
    'person', 'bicycle', 'car', 'motorcycle', 'airplane', 'bus', 'train', 'truck', 'boat',
    'traffic light', 'fire hydrant', 'street sign', 'stop sign', 'parking meter', 'bench',
    'bird', 'cat', 'dog', 'horse', 'sheep', 'cow', 'elephant', 'bear', 'zebra', 'giraffe',
    'hat', 'backpack', 'umbrella', 'shoe', 'eye glasses', 'handbag', 'tie', 'suitcase',
    'frisbee', 'skis', 'snowboard', 'sports ball', 'kite', 'baseball bat', 'baseball glove',
    'skateboard', 'surfboard', 'tennis racket', 'bottle', 'plate', 'wine glass', 'cup', 'fork',
    'knife', 'spoon', 'bowl', 'banana', 'apple', 'sandwich', 'orange', 'broccoli', 'carrot',
    'hot dog', 'pizza', 'donut', 'cake', 'chair', 'couch', 'potted plant', 'bed', 'mirror',
    'dining table', 'window', 'desk', 'toilet', 'door', 'tv', 'laptop', 'mouse', 'remote',
    'keyboard', 'cell phone', 'microwave', 'oven', 'toaster', 'sink', 'refrigerator',
    'blender', 'book', 'clock', 'vase', 'scissors', 'teddy bear', 'hair drier', 'toothbrush',
    'hair brush',
    'banner', 'blanket', 'branch', 'bridge', 'building-other', 'bush', 'cabinet', 'cage',
    'cardboard', 'carpet', 'ceiling-other', 'ceiling-tile', 'cloth', 'clothes', 'clouds',
    'counter', 'cupboard', 'curtain', 'desk-stuff', 'dirt', 'door-stuff', 'fence',
    'floor-marble', 'floor-other', 'floor-stone', 'floor-tile', 'floor-wood', 'flower', 'fog',
    'food-other', 'fruit', 'furniture-other', 'grass', 'gravel', 'ground-other', 'hill',
    'house', 'leaves', 'light', 'mat', 'metal', 'mirror-stuff', 'moss', 'mountain', 'mud',
    'napkin', 'net', 'paper', 'pavement', 'pillow', 'plant-other', 'plastic', 'platform',
    'playingfield', 'railing', 'railroad', 'river', 'road', 'rock', 'roof', 'rug', 'salad',
    'sand', 'sea', 'shelf', 'sky-other', 'skyscraper', 'snow', 'solid-other', 'stairs',
    'stone', 'straw', 'structural-other', 'table', 'tent', 'textile-other', 'towel', 'tree',
    'vegetable', 'wall-brick', 'wall-concrete', 'wall-other', 'wall-panel', 'wall-stone',
    'wall-tile', 'wall-wood', 'water-other', 'waterdrops', 'window-blind', 'window-other',
    'wood')
# 0-based ids no COCO-Stuff pixel uses: street sign, hat, shoe, eye glasses, plate, mirror,
# window, desk, door, blender, hair brush.
COCOSTUFF_UNUSED = (11, 25, 28, 29, 44, 65, 67, 68, 70, 82, 90)


def _require(path: str, what: str, hint: str) -> str:
    if not os.path.exists(path):
        raise FileNotFoundError(f"{what} '{path}' not found: {hint}")
    return path


def read_rgb(path: str) -> np.ndarray:
    """Decode an image file to uint8 ``[H, W, 3]`` RGB (EXIF orientation ignored, as the
    label maps are); missing or unreadable files raise naming the file."""
    _require(path, 'Image', 'restore it or remove its id from the split file.')
    image = cv2.imdecode(np.fromfile(path, dtype=np.uint8),
                         cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION)
    if image is None:
        raise ValueError(f"Cannot read image '{path}' (corrupt or not an image); replace the "
                         'file or remove its id from the split file.')
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def _describe(valid: np.ndarray) -> str:
    """``[T, T, F, T]`` -> ``'0..1, 3'``."""
    idx = np.flatnonzero(valid)
    runs = np.split(idx, np.flatnonzero(np.diff(idx) > 1) + 1)
    return ', '.join(f'{r[0]}..{r[-1]}' if len(r) > 1 else f'{r[0]}' for r in runs)


def _read_ids(path: str) -> List[str]:
    _require(path, 'Split file', 'check data_root and split.')
    with open(path) as f:
        ids = [line.split()[0] for line in f if line.strip()]
    if not ids:
        raise ValueError(f"Split file '{path}' lists no ids; it needs one id per line.")
    return ids


class _SegmentationDataset(KDDataset):
    """Common part: class names, pipeline, checks, sample layout (the dataset contract's
    hooks: :mod:`kdbench.data_contract`).

    Subclasses set ``ids``, ``image_path(i)``, ``label_path(i)``, ``read_raw_label(i)`` and a
    lookup table ``lut`` (256 entries) mapping raw label values to train ids; raw values
    with ``lut_valid`` False are errors.
    """

    ids: List[str]
    lut: np.ndarray           # uint8 [256]: raw value -> train id or 255
    lut_valid: np.ndarray     # bool [256]: raw values allowed in a label file

    def __init__(self, classes: Sequence[str], pipeline: Optional[Sequence[dict]]):
        self.metainfo = dict(classes=tuple(classes))
        self.transform = build_seg_pipeline(pipeline)

    def __len__(self) -> int:
        return len(self.ids)

    def image_path(self, index: int) -> str:
        raise NotImplementedError

    def label_path(self, index: int) -> str:
        raise NotImplementedError

    def sample_files(self) -> Iterator[str]:
        """Every file the dataset reads: image and label per sample (kdbench's teacher
        metric cache keys on their sizes and times)."""
        for index in range(len(self.ids)):
            yield self.image_path(index)
            yield self.label_path(index)

    def read_raw_label(self, index: int) -> np.ndarray:
        """The label map as stored (integer ``[H, W]``)."""
        raise NotImplementedError

    def load(self, index: int) -> Tuple[np.ndarray, np.ndarray]:
        """Image uint8 ``[H, W, 3]`` and label uint8 ``[H, W]`` (train ids or 255), checked:
        readable files, equal sizes, raw label values allowed."""
        image = read_rgb(self.image_path(index))
        raw, path = self.read_raw_label(index), self.label_path(index)
        if raw.shape != image.shape[:2]:
            raise ValueError(f"Label '{path}' is {raw.shape[0]}x{raw.shape[1]} but its image "
                             f"'{self.image_path(index)}' is {image.shape[0]}x{image.shape[1]} "
                             '(HxW); fix or remove the pair.')
        if raw.size and (raw.min() < 0 or raw.max() >= len(self.lut)
                         or not self.lut_valid[raw].all()):
            bad = [int(v) for v in np.unique(raw)
                   if not 0 <= v < len(self.lut) or not self.lut_valid[v]]
            raise ValueError(f"Label '{path}' holds values {bad[:10]} outside the allowed "
                             f'{_describe(self.lut_valid)}; fix or remove the file.')
        return image, self.lut[raw]

    def check_sample(self, index: int) -> None:
        """Load sample ``index`` without the pipeline; raises FileNotFoundError/ValueError
        naming the faulty file."""
        self.load(index)

    def __getitem__(self, index: int) -> Dict:
        image, label = self.load(index)
        if self.transform is not None:
            image, label = self.transform(image, label)
        return dict(inputs=torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1))),
                    data_samples=dict(label=torch.from_numpy(label.astype(np.int64))))


def _check_choice(name: str, value: str, choices: Sequence[str]) -> None:
    if value not in choices:
        raise ValueError(f"{name} must be one of {list(choices)}, got '{value}'.")


@DATASETS.register_module()
class VOCAugDataset(_SegmentationDataset):
    """Pascal VOC 2012 with the SBD augmented labels (21 classes, 255 = ignore).

    Layout: ``<data_root>/JPEGImages/<id>.jpg``, ``<data_root>/<label_dir>/<id>.png``
    (single-channel; palette PNGs are read as indices), and
    ``<data_root>/ImageSets/Segmentation/<split>.txt`` (train_aug 10582, val 1449 ids), as
    ``tools/prepare_voc_aug.py`` writes it.

    mmseg's layout (``tools/dataset_converters/voc_aug.py``) works as it is: its
    ``trainaug.txt`` (the same 10582 ids) is read when ``train_aug.txt`` is absent (and
    ``split='trainaug'`` names it), ``split='aug'`` reads its ``aug.txt`` (the 9118 SBD ids
    outside VOC train/val), and since its ``SegmentationClassAug/`` holds only the SBD
    labels, a label missing from ``label_dir`` is read from ``fallback_label_dir`` (VOC's own
    ``SegmentationClass/``, where the VOC train ids outside SBD have theirs).

    Args:
        data_root: the VOC2012 folder.
        split: ``'train_aug'`` (alias ``'trainaug'``), ``'val'``, ``'train'``,
            ``'trainval'`` or ``'aug'``.
        pipeline: transform configs (see ``transforms``).
        label_dir: ``'SegmentationClassAug'`` or the plain ``'SegmentationClass'``.
        fallback_label_dir: where a label absent from ``label_dir`` is looked up
            (``None``: nowhere).
    """

    SPLITS = ('train_aug', 'val', 'train', 'trainval', 'trainaug', 'aug')
    HOW_TO_PREPARE = ('python tools/prepare_voc_aug.py --voc VOCtrainval_11-May-2012.tar '
                      '--sbd benchmark.tgz (or --download)')
    #: split -> split files tried in order (kdbench's name, then mmseg's).
    SPLIT_FILES = {'train_aug': ('train_aug.txt', 'trainaug.txt'),
                   'trainaug': ('trainaug.txt', 'train_aug.txt')}
    #: Images per published split (``tools/recipe.py`` counts iterations from them).
    SPLIT_SIZES = {'train_aug': 10582, 'trainaug': 10582, 'aug': 9118, 'val': 1449,
                   'train': 1464, 'trainval': 2913}
    #: 1058 of the 10582 train_aug images (torchdistill's 0.9/0.1), about 3/4 of val.
    HOLDOUT_DEFAULT = {'fraction': 0.1}

    def __init__(self, data_root: str, split: str = 'train_aug',
                 pipeline: Optional[Sequence[dict]] = None,
                 label_dir: str = 'SegmentationClassAug',
                 fallback_label_dir: Optional[str] = 'SegmentationClass'):
        _check_choice('VOCAugDataset split', split, self.SPLITS)
        _require(data_root, 'VOC data root', 'it must hold JPEGImages/, '
                 f'{label_dir}/ and ImageSets/Segmentation/ (tools/prepare_voc_aug.py '
                 'writes them).')
        super().__init__(VOC_CLASSES, pipeline)
        self.data_root, self.label_dir = data_root, label_dir
        self.fallback_label_dir = fallback_label_dir
        self.ids = _read_ids(self.split_file(data_root, split))
        self.lut = np.arange(256, dtype=np.uint8)
        self.lut_valid = np.zeros(256, dtype=bool)
        self.lut_valid[[*range(len(VOC_CLASSES)), IGNORE_INDEX]] = True

    @classmethod
    def split_file(cls, data_root: str, split: str) -> str:
        """The split's id list: kdbench's name, else mmseg's (the first that exists)."""
        folder = os.path.join(data_root, 'ImageSets', 'Segmentation')
        names = cls.SPLIT_FILES.get(split, (f'{split}.txt',))
        found = [n for n in names if os.path.isfile(os.path.join(folder, n))]
        return os.path.join(folder, (found or names)[0])

    @classmethod
    def required_files(cls, data_root: str, split: str = 'train_aug', **kwargs) -> Dict[str, str]:
        """Files that must exist before the dataset is built (kdbench's preflight)."""
        return {'split file': cls.split_file(data_root, split)}

    def image_path(self, index: int) -> str:
        return os.path.join(self.data_root, 'JPEGImages', f'{self.ids[index]}.jpg')

    def label_path(self, index: int) -> str:
        name = f'{self.ids[index]}.png'
        path = os.path.join(self.data_root, self.label_dir, name)
        if not os.path.exists(path) and self.fallback_label_dir:
            fallback = os.path.join(self.data_root, self.fallback_label_dir, name)
            if os.path.exists(fallback):
                return fallback
        return path

    def read_raw_label(self, index: int) -> np.ndarray:
        path = _require(self.label_path(index), 'Label file',
                        'restore it or remove its id from the split file' + (
                            f' (not in {self.fallback_label_dir}/ either).'
                            if self.fallback_label_dir else '.'))
        try:
            with Image.open(path) as png:
                bands, label = png.getbands(), np.asarray(png)
        except (OSError, SyntaxError, ValueError) as err:  # PIL's errors for broken files
            raise ValueError(f"Cannot read label '{path}' ({err}); replace the file.") from err
        if len(bands) != 1:
            raise ValueError(f"Label '{path}' has {len(bands)} channels ({''.join(bands)}); "
                             'it must be a single-channel (palette or grayscale) PNG of '
                             'class indices.')
        return label


@DATASETS.register_module()
class COCOStuff10kDataset(_SegmentationDataset):
    """COCO-Stuff-10k v1.1 (9000 train / 1000 test images).

    Layout: ``<data_root>/images/<name>.jpg``, ``<data_root>/annotations/<name>.mat``
    (field ``S``: 0 = unlabeled, 1..182 = COCO-Stuff ids) and
    ``<data_root>/imageLists/<split>.txt``. Labels become ``id - 1`` (0 -> 255); with
    ``label_mode='171'`` the 171 used ids are renumbered 0..170 and the 11 unused ones
    (``COCOSTUFF_UNUSED``) become 255, with ``'182'`` the raw ``0..181`` are kept.

    mmseg's converted layout (``tools/dataset_converters/coco_stuff10k.py``) is read with
    ``annotation='png'``: ``images/{train2014,test2014}/<name>.jpg`` and
    ``annotations/{train2014,test2014}/<name>_labelTrainIds.png`` holding 0 (unlabeled) and
    1..171, the 171 used COCO-Stuff ids in order (the converter's table skips the 11
    unused ones); the split is the folder, the ids the sorted file names. Both layouts give
    the same train ids.

    Args:
        data_root: the cocostuff-10k-v1.1 folder (or mmseg's converted one).
        split: ``'train'``, ``'test'`` or ``'all'``.
        pipeline: transform configs.
        label_mode: ``'171'`` or ``'182'``.
        annotation: ``'mat'``, ``'json'`` (COCO-style RLE/polygon annotations read with
            pycocotools; images matched by file-name stem) or ``'png'`` (mmseg's layout).
        json_file: the json path (default ``<data_root>/cocostuff-10k-v1.1.json``).
    """

    SPLITS = ('train', 'test', 'all')
    HOW_TO_PREPARE = 'extract cocostuff-10k-v1.1.zip into the data root, as it is'
    PNG_SUFFIX = '_labelTrainIds.png'
    PNG_FOLDERS = dict(train=('train2014',), test=('test2014',),
                       all=('train2014', 'test2014'))
    #: Images per published split (``tools/recipe.py`` counts iterations from them).
    SPLIT_SIZES = {'train': 9000, 'test': 1000, 'all': 10000}
    #: 1000 of the 9000 train images, as many as its test split.
    HOLDOUT_DEFAULT = {'size': 1000}

    def __init__(self, data_root: str, split: str = 'train',
                 pipeline: Optional[Sequence[dict]] = None, label_mode: str = '171',
                 annotation: str = 'mat', json_file: Optional[str] = None):
        _check_choice('COCOStuff10kDataset split', split, self.SPLITS)
        _check_choice('COCOStuff10kDataset label_mode', label_mode, ('171', '182'))
        _check_choice('COCOStuff10kDataset annotation', annotation, ('mat', 'json', 'png'))
        _require(data_root, 'COCO-Stuff-10k data root',
                 'it must hold images/, annotations/ and imageLists/.')
        used = np.setdiff1d(np.arange(len(COCOSTUFF_CLASSES)), COCOSTUFF_UNUSED)
        # mmseg's PNG values 0..171 -> raw ids (0 unlabeled, the used ids in order)
        self.png_to_raw = np.concatenate([[0], used + 1]).astype(np.uint8)
        if label_mode == '182':
            used = np.arange(len(COCOSTUFF_CLASSES))
        super().__init__([COCOSTUFF_CLASSES[i] for i in used], pipeline)
        self.data_root, self.annotation = data_root, annotation
        if annotation == 'png':
            self.ids, self.folders = self._png_ids(split)
        else:
            lists = self.split_file(data_root, split)
            if not os.path.exists(lists) and os.path.isdir(
                    os.path.join(data_root, 'annotations', 'train2014')):
                raise FileNotFoundError(f"Split file '{lists}' not found, but annotations/"
                                        "train2014/ is: this is mmseg's converted layout; "
                                        "set annotation='png'.")
            self.ids = _read_ids(lists)
        self.lut = np.full(256, IGNORE_INDEX, dtype=np.uint8)
        self.lut[used + 1] = np.arange(len(used))
        self.lut_valid = np.arange(256) <= len(COCOSTUFF_CLASSES)
        self.json_file = json_file or os.path.join(data_root, 'cocostuff-10k-v1.1.json')
        if annotation == 'json':
            self.coco, self.image_ids = _load_coco(self.json_file)

    def _png_ids(self, split: str) -> Tuple[List[str], List[str]]:
        """Sorted names and folders of mmseg's ``*_labelTrainIds.png`` files."""
        ids, folders = [], []
        for folder in self.PNG_FOLDERS[split]:
            path = _require(os.path.join(self.data_root, 'annotations', folder),
                            'Label folder', "annotation='png' reads mmseg's converted layout "
                            '(annotations/{train2014,test2014}/*_labelTrainIds.png).')
            names = sorted(f[:-len(self.PNG_SUFFIX)] for f in os.listdir(path)
                           if f.endswith(self.PNG_SUFFIX))
            ids += names
            folders += [folder] * len(names)
        if not ids:
            raise ValueError(f"No *{self.PNG_SUFFIX} files under '{self.data_root}/annotations/"
                             f"{{{','.join(self.PNG_FOLDERS[split])}}}'; convert the data "
                             "with mmseg's coco_stuff10k.py or use annotation='mat'.")
        return ids, folders

    @staticmethod
    def split_file(data_root: str, split: str) -> str:
        return os.path.join(data_root, 'imageLists', f'{split}.txt')

    @classmethod
    def required_files(cls, data_root: str, split: str = 'train', annotation: str = 'mat',
                       json_file: Optional[str] = None, **kwargs) -> Dict[str, str]:
        """Files that must exist before the dataset is built (kdbench's preflight)."""
        if annotation == 'png':
            return {f'{folder} labels': os.path.join(data_root, 'annotations', folder)
                    for folder in cls.PNG_FOLDERS[split]}
        files = {'split file': cls.split_file(data_root, split)}
        if annotation == 'json':
            files['json_file'] = json_file or os.path.join(data_root, 'cocostuff-10k-v1.1.json')
        return files

    def image_path(self, index: int) -> str:
        if self.annotation == 'png':
            return os.path.join(self.data_root, 'images', self.folders[index],
                                f'{self.ids[index]}.jpg')
        return os.path.join(self.data_root, 'images', f'{self.ids[index]}.jpg')

    def label_path(self, index: int) -> str:
        if self.annotation == 'json':
            return self.json_file
        if self.annotation == 'png':
            return os.path.join(self.data_root, 'annotations', self.folders[index],
                                f'{self.ids[index]}{self.PNG_SUFFIX}')
        return os.path.join(self.data_root, 'annotations', f'{self.ids[index]}.mat')

    def read_raw_label(self, index: int) -> np.ndarray:
        if self.annotation == 'json':
            return self._paint(index)
        if self.annotation == 'png':
            return self._read_png(index)
        from scipy.io import loadmat
        path = _require(self.label_path(index), 'Label file',
                        'restore it or remove its name from the image list.')
        try:
            label = loadmat(path)['S']
        except Exception as err:  # scipy raises ValueError, TypeError, KeyError, OSError...
            raise ValueError(f"Cannot read label '{path}' ({type(err).__name__}: {err}); it "
                             "must be a MATLAB file with an HxW field 'S'; replace it.") from err
        if label.ndim != 2 or label.dtype.kind not in 'ui':
            raise ValueError(f"Label '{path}' field 'S' is {label.dtype} {label.shape}; "
                             'expected an HxW integer map; replace the file.')
        return label

    def _read_png(self, index: int) -> np.ndarray:
        """mmseg's train-id PNG (0..171) as raw COCO-Stuff ids (0, 1..182)."""
        path = _require(self.label_path(index), 'Label file',
                        'restore it or reconvert the data.')
        try:
            with Image.open(path) as png:
                bands, label = png.getbands(), np.asarray(png)
        except (OSError, SyntaxError, ValueError) as err:
            raise ValueError(f"Cannot read label '{path}' ({err}); replace the file.") from err
        if len(bands) != 1:
            raise ValueError(f"Label '{path}' has {len(bands)} channels; mmseg's COCO-Stuff "
                             'labels are single-channel PNGs of train ids 0..171.')
        bad = np.unique(label[label >= len(self.png_to_raw)])
        if bad.size:
            raise ValueError(f"Label '{path}' holds values {bad[:10].tolist()} outside mmseg's "
                             'train ids 0..171; reconvert the file.')
        return self.png_to_raw[label]

    def _paint(self, index: int) -> np.ndarray:
        """Raw map (0 = unlabeled, 1..182) painted from the json's annotations in order;
        category 183 ('other') stays 0."""
        name = self.ids[index]
        if name not in self.image_ids:
            raise ValueError(f"'{self.json_file}' has no image named '{name}'; use the json "
                             'that matches the image lists.')
        img_id = self.image_ids[name]
        info = self.coco.imgs[img_id]
        label = np.zeros((info['height'], info['width']), dtype=np.uint8)
        for ann in self.coco.imgToAnns.get(img_id, []):
            cat = int(ann['category_id'])
            if not 0 <= cat <= len(COCOSTUFF_CLASSES) + 1:
                raise ValueError(f"'{self.json_file}': annotation {ann.get('id')} of '{name}' "
                                 f'has category_id {cat} outside 0..183; fix the file.')
            if 1 <= cat <= len(COCOSTUFF_CLASSES):
                label[self.coco.annToMask(ann) > 0] = cat
        return label


def _load_coco(path: str):
    """pycocotools index of ``path`` and ``{file-name stem: image id}``."""
    from pycocotools.coco import COCO
    _require(path, 'COCO-Stuff json', "set json_file or use annotation='mat'.")
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            coco = COCO(path)
    except Exception as err:
        raise ValueError(f"Cannot read COCO json '{path}' ({type(err).__name__}: {err}); "
                         'replace the file.') from err
    return coco, {os.path.splitext(os.path.basename(img['file_name']))[0]: img_id
                  for img_id, img in coco.imgs.items()}


DIGIT_SEG_CLASSES = ('background',) + tuple(str(d) for d in range(10))


def digit_sources(targets: np.ndarray, split: str, test_fraction: float = 0.25,
                  seed: int = 0) -> np.ndarray:
    """Sorted indices of the scikit-learn digits a split draws from: a stratified shuffle
    by ``seed`` holding out ``round(n_c * test_fraction)`` images of each class for
    ``'test'`` (the split ``DigitsDataset`` makes with the same arguments)."""
    rng = np.random.default_rng(seed)
    keep = []
    for label in range(10):
        idx = rng.permutation(np.flatnonzero(targets == label))
        n_test = int(round(len(idx) * test_fraction))
        keep.append(idx[:n_test] if split == 'test' else idx[n_test:])
    return np.sort(np.concatenate(keep))


def upscale_digit(digit: np.ndarray, side: int) -> np.ndarray:
    """An 8x8 digit with intensities in [0, 1] -> float32 ``[side, side]`` (bilinear,
    half-pixel centres, clamped to [0, 1])."""
    x = torch.from_numpy(np.asarray(digit, dtype=np.float32))[None, None]
    x = torch.nn.functional.interpolate(x, size=(side, side), mode='bilinear',
                                        align_corners=False)
    return x[0, 0].clamp(0, 1).numpy()


@DATASETS.register_module()
class DigitsSegmentationDataset(_SegmentationDataset):
    """Synthetic scenes of scikit-learn's handwritten digits, for the embedded
    segmentation demo (no download, made in memory at init, ~1 s for 700 scenes).

    Each ``size`` x ``size`` RGB scene is a background of one random dark colour (channels
    uniform in ``background_range``) plus clipped Gaussian pixel noise, with
    ``digits_per_image`` digits pasted at random non-overlapping positions, each upscaled
    (bilinear) from 8x8 to a random side in ``digit_sides`` and blended in its own random
    light colour (channels uniform in ``colour_range``, at least ``min_contrast`` away from
    the background colour, RGB Euclidean): ``pixel = (1 - a) * background + a * colour``
    with ``a`` the digit's intensity in [0, 1]. Labels (11 classes, ``DIGIT_SEG_CLASSES``):
    ``digit + 1`` where ``a > threshold``, else 0 (background); no pixel is ignored (255).

    Train and test scenes draw their digits from disjoint images: the fixed stratified
    split of :func:`digit_sources` (``test_fraction``, ``split_seed``; the same split as
    the classification demo's ``DigitsDataset``). Scenes are deterministic given
    ``(split, seed)``; train and test use different random streams for the same seed.
    ``scenes[i]`` records how scene ``i`` was made (background colour, and per digit its
    source index, value, top, left, side and colour).

    Args:
        split: ``'train'`` or ``'test'``.
        num_images: number of scenes (default: 480 train, 200 test).
        size: scene side in pixels.
        digits_per_image: ``(low, high)``: digits per scene, uniform, inclusive (fewer
            when no free position is found in 50 tries; at least one always fits).
        digit_sides: ``(low, high)`` side range of a pasted digit, inclusive.
        threshold: intensity above which a digit pixel is labelled.
        noise: standard deviation of the background noise (clipped at 2.5 sigma).
        background_range, colour_range: ``(low, high)`` of each RGB channel of the
            background and digit colours. Dark backgrounds and light digits make the
            foreground a local cue, so that a network trained from scratch for a few
            hundred iterations gets to the digits' shapes (with both colours uniform in
            [0, 255] it first has to learn to compare each pixel with the whole scene).
        min_contrast: least RGB distance between a digit's colour and the background's.
        seed: scene seed.
        test_fraction, split_seed: the source split.
        pipeline: transform configs (see ``transforms``), applied to (image, label).
    """

    SPLITS = ('train', 'test')
    #: 96 of the 480 train scenes (the test split has 200). Held-out scenes are new
    #: scenes, but their digits come from the same source images as the training scenes'.
    HOLDOUT_DEFAULT = {'fraction': 0.2}

    def __init__(self, split: str = 'train', num_images: Optional[int] = None,
                 size: int = 64, digits_per_image: Tuple[int, int] = (3, 5),
                 digit_sides: Tuple[int, int] = (16, 28), threshold: float = 0.5,
                 noise: float = 10.0, background_range: Tuple[float, float] = (0, 100),
                 colour_range: Tuple[float, float] = (140, 255), min_contrast: float = 120.0,
                 seed: int = 0, test_fraction: float = 0.25, split_seed: int = 0,
                 pipeline: Optional[Sequence[dict]] = None):
        from sklearn.datasets import load_digits
        _check_choice('DigitsSegmentationDataset split', split, self.SPLITS)
        low, high = digit_sides
        if not 1 <= low <= high <= size or not 1 <= digits_per_image[0] <= digits_per_image[1]:
            raise ValueError('DigitsSegmentationDataset needs 1 <= digit_sides[0] <= '
                             'digit_sides[1] <= size and 1 <= digits_per_image[0] <= '
                             f'digits_per_image[1], got digit_sides={digit_sides}, size={size}, '
                             f'digits_per_image={digits_per_image}.')
        super().__init__(DIGIT_SEG_CLASSES, pipeline)
        num_images = (480 if split == 'train' else 200) if num_images is None else num_images
        digits = load_digits()
        self.sources = digit_sources(digits.target, split, test_fraction, split_seed)
        self.threshold, self.size = threshold, size
        rng = np.random.default_rng([seed, self.SPLITS.index(split)])
        self.ids = [f'{split}_{i:05d}' for i in range(num_images)]
        self.images = np.empty((num_images, size, size, 3), dtype=np.uint8)
        self.labels = np.empty((num_images, size, size), dtype=np.uint8)
        self.scenes: List[Dict] = []
        intensities = digits.images / 16.0
        for i in range(num_images):
            scene = self._layout(rng, digits.target, digits_per_image, (low, high),
                                 background_range, colour_range, min_contrast)
            self.images[i], self.labels[i] = self._render(rng, scene, intensities, noise)
            self.scenes.append(scene)

    def _layout(self, rng: np.random.Generator, targets: np.ndarray, count: Tuple[int, int],
                sides: Tuple[int, int], background_range: Tuple[float, float],
                colour_range: Tuple[float, float], min_contrast: float) -> Dict:
        background = rng.uniform(*background_range, 3)
        placed: List[Dict] = []
        for _ in range(int(rng.integers(count[0], count[1] + 1))):
            side = int(rng.integers(sides[0], sides[1] + 1))
            for _try in range(50):
                top, left = (int(v) for v in rng.integers(0, self.size - side + 1, 2))
                if all(top >= p['top'] + p['side'] or p['top'] >= top + side or
                       left >= p['left'] + p['side'] or p['left'] >= left + side
                       for p in placed):
                    break
            else:
                continue
            colour = rng.uniform(*colour_range, 3)
            for _try in range(1000):
                if np.linalg.norm(colour - background) >= min_contrast:
                    break
                colour = rng.uniform(*colour_range, 3)
            else:
                raise ValueError(f'DigitsSegmentationDataset: no colour in {colour_range} is '
                                 f'{min_contrast} away from the background {background}; '
                                 'lower min_contrast or separate the colour ranges.')
            source = int(rng.choice(self.sources))
            placed.append(dict(source=source, digit=int(targets[source]), top=top, left=left,
                               side=side, colour=colour))
        return dict(background=background, digits=placed)

    def _render(self, rng: np.random.Generator, scene: Dict, sources: np.ndarray,
                noise: float) -> Tuple[np.ndarray, np.ndarray]:
        size = self.size
        pixel_noise = np.clip(rng.normal(0, noise, (size, size, 3)), -2.5 * noise, 2.5 * noise)
        image = scene['background'] + pixel_noise
        label = np.zeros((size, size), dtype=np.uint8)
        for d in scene['digits']:
            alpha = upscale_digit(sources[d['source']], d['side'])
            box = (slice(d['top'], d['top'] + d['side']),
                   slice(d['left'], d['left'] + d['side']))
            image[box] = (1 - alpha[..., None]) * image[box] + alpha[..., None] * d['colour']
            label[box][alpha > self.threshold] = d['digit'] + 1
        return np.clip(np.round(image), 0, 255).astype(np.uint8), label

    def load(self, index: int) -> Tuple[np.ndarray, np.ndarray]:
        """Scene ``index``: image uint8 ``[H, W, 3]`` RGB and label uint8 ``[H, W]``."""
        return self.images[index], self.labels[index]

    def sample_files(self) -> Iterator[str]:
        """None: the scenes are rendered in memory (``images``, ``labels``)."""
        return iter(())
