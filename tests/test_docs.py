"""The documentation agrees with the code: the repository paths README.md and docs/*.md
name exist, the loss-key rule the docs state is the Distiller's, the method tables' types,
defaults and taps are the registered classes' signatures, and the tap names the docs list
are in the built models' tap tables. Failure messages name the doc, the line and the claim."""
import ast
import glob
import inspect
import os
import re
from typing import Dict, Iterator, List, Set, Tuple

import pytest
import torch
from shared_setup import ROOT

from kdbench.distill import registered_methods
from kdbench.registry import MODELS

DOCS = ['README.md'] + sorted(os.path.relpath(p, ROOT)
                              for p in glob.glob(os.path.join(ROOT, 'docs', '*.md')))

# A repository path in code: one of these folders, a file with one of these extensions.
# The character class leaves out placeholders (`<name>`, `{prefix}`, `*`), so a pattern
# such as `configs/cls/{prefix}_{pair}.py` never matches; the look-behind keeps paths
# inside other trees (`mmsegmentation/tools/...`) out.
REPO_PATH = re.compile(r'(?<![\w./-])((?:kdbench|tasks|tools|tests|configs|docs)/'
                       r'[\w./-]*\.(?:py|md|sh|csv))(?![\w])')
CODE_SPAN = re.compile(r'`([^`\n]+)`')
LINK = re.compile(r'\]\(([^)\s]+)\)')


def _read(doc: str) -> List[str]:
    with open(os.path.join(ROOT, doc), encoding='utf-8') as f:
        return f.read().splitlines()


def _code_lines(doc: str) -> Iterator[Tuple[int, str]]:
    """``(line number, code)`` for every inline code span and every fenced-block line."""
    fenced = False
    for number, line in enumerate(_read(doc), 1):
        if line.lstrip().startswith('```'):
            fenced = not fenced
        elif fenced:
            yield number, line
        else:
            for span in CODE_SPAN.findall(line):
                yield number, span


def _mentioned_paths(doc: str) -> Iterator[Tuple[int, str, str]]:
    """``(line, path as written, repository-relative path)`` of the files ``doc`` names:
    repository paths in code (relative to the root) and relative link targets (relative
    to the doc's folder; anchors dropped)."""
    for number, code in _code_lines(doc):
        for path in REPO_PATH.findall(code):
            if '...' not in path:
                yield number, path, path
    folder = os.path.dirname(doc)
    for number, line in enumerate(_read(doc), 1):
        for target in LINK.findall(line):
            target = target.split('#', 1)[0]
            if target and '://' not in target and not target.startswith('mailto:'):
                yield number, target, os.path.normpath(os.path.join(folder, target))


def test_every_path_the_docs_name_exists():
    missing = [f'{doc}:{number}: {written}' + (f' (= {path})' if path != written else '')
               for doc in DOCS for number, written, path in _mentioned_paths(doc)
               if not os.path.exists(os.path.join(ROOT, path))]
    assert not missing, ('Files named in the docs that do not exist (fix the doc or the '
                         'path):\n' + '\n'.join(missing))


def test_the_path_scan_reads_code_spans_fences_and_links():
    """The scan above finds what it should (else it would pass on nothing)."""
    found = {(doc, path) for doc in ('README.md', 'docs/methods.md')
             for _, _, path in _mentioned_paths(doc)}
    assert ('README.md', 'configs/cls/kd_resnet32x4_resnet8x4_cifar100.py') in found  # fence
    assert ('README.md', 'docs/method_table.md') in found                    # link
    assert ('docs/methods.md', 'kdbench/distill/cat_kd.py') in found          # code span
    assert ('docs/methods.md', 'docs/reference.md') in found
    assert not any('{' in p or '<' in p or '*' in p for _, p in found)


# --- the loss key --------------------------------------------------------------------------

# (doc, sentence): the rule each doc states, whitespace-normalised.
LOSS_KEY_RULES = [
    ('docs/method_table.md', "the Distiller sets `name` to the method's key in the config's "
                             '`methods` dict, so the loss key is `loss_<key>`'),
    ('README.md', 'Each key `name` logs and backpropagates `loss_<name>`.'),
    ('docs/methods.md', '`<name>` gives the logged and backpropagated key `loss_<name>`'),
]
# The example docs/method_table.md gives after the rule.
LOSS_KEY_EXAMPLE = re.compile(r"`methods=dict\((\w+)=dict\(type='(\w+)'\)\)` logs `loss_(\w+)`")


def _text(doc: str) -> str:
    return ' '.join(' '.join(_read(doc)).split())


@pytest.mark.parametrize('doc, rule', LOSS_KEY_RULES, ids=[d for d, _ in LOSS_KEY_RULES])
def test_docs_state_the_loss_key_rule(doc, rule):
    stated = rule in _text(doc)
    assert stated, (f'{doc} no longer states the loss-key rule "{rule}"; the Distiller '
                    "names each loss loss_<key> after the method's key in model.methods "
                    '(test_each_method_logs_loss_of_its_key checks it)')


def _example() -> Tuple[str, str, str]:
    found = LOSS_KEY_EXAMPLE.search(_text('docs/method_table.md'))
    assert found, ('docs/method_table.md: the loss-key example '
                   "`methods=dict(kd=dict(type='KD'))` logs `loss_kd` is missing")
    return found.groups()


def _method_losses(methods: dict, tiny_classifier_cfg, teacher_ckpt) -> Set[str]:
    """The loss keys the methods add to one training step of a tiny Distiller."""
    net = tiny_classifier_cfg('resnet8', 10)
    distiller = MODELS.build(dict(type='Distiller', student=net, teacher=net,
                                  teacher_ckpt=teacher_ckpt(net), methods=methods))
    distiller.train()
    torch.manual_seed(0)
    losses = distiller(torch.randn(2, 3, 32, 32), dict(label=torch.tensor([1, 3])),
                       mode='loss')
    student = distiller.student(torch.randn(2, 3, 32, 32), dict(label=torch.tensor([1, 3])),
                                mode='loss')
    return set(losses) - set(student)


def test_each_method_logs_loss_of_its_key(tiny_classifier_cfg, teacher_ckpt):
    """The doc's example, and keys unlike the types and the config prefixes: the key alone
    names the loss (one Distiller holds them all)."""
    key, kind, logged = _example()
    assert logged == key, f'docs/method_table.md: the example logs loss_{logged} for key {key}'
    methods = {key: dict(type=kind), 'soft_targets': dict(type='KD'),
               'attention_2': dict(type='AT'), 'dist_beta_2': dict(type='DIST', beta=2.0),
               'skipped': None}
    assert _method_losses(methods, tiny_classifier_cfg, teacher_ckpt) == \
        {f'loss_{key}', 'loss_soft_targets', 'loss_attention_2', 'loss_dist_beta_2'}


def test_every_method_has_the_test_file_the_method_table_names():
    """docs/method_table.md: a method's tests are tests/distill/test_<name>.py, <name> the
    stem of its file kdbench/distill/<name>.py."""
    assert '`tests/distill/test_<name>.py`' in _text('docs/method_table.md')
    files = {e.name: f'tests/distill/test_{e.cls.__module__.rsplit(".", 1)[-1]}.py'
             for e in registered_methods()}
    missing = {name: path for name, path in files.items()
               if not os.path.isfile(os.path.join(ROOT, path))}
    assert not missing, f'Methods without the test file docs/method_table.md names: {missing}'


# --- the method tables -----------------------------------------------------------------------

METHOD_TABLE_HEADER = '| method | registered type | defaults'


def _cells(row: str) -> List[str]:
    """The cells of a Markdown table row; a ``|`` inside a code span stays in its cell."""
    cells, current, in_code = [], '', False
    for char in row.strip().strip('|'):
        if char == '`':
            in_code = not in_code
        if char == '|' and not in_code:
            cells.append(current.strip())
            current = ''
        else:
            current += char
    return cells + [current.strip()]


def _method_rows(doc: str) -> Dict[str, Tuple[int, List[str]]]:
    """``{registered type: (line, cells)}`` of every method table in ``doc`` (the tables
    whose header starts with :data:`METHOD_TABLE_HEADER`)."""
    rows, lines = {}, _read(doc)
    for start, line in enumerate(lines):
        if line.startswith(METHOD_TABLE_HEADER):
            for number in range(start + 2, len(lines)):
                if not lines[number].startswith('|'):
                    break
                cells = _cells(lines[number])
                kind = CODE_SPAN.findall(cells[1])
                assert len(kind) == 1, f'{doc}:{number + 1}: no `TYPE` in the second column'
                rows[kind[0]] = (number + 1, cells)
    return rows


METHOD_TABLE_DOCS = [doc for doc in DOCS
                     if any(line.startswith(METHOD_TABLE_HEADER) for line in _read(doc))]


def test_the_readme_method_table_has_a_row_per_registered_method():
    rows = _method_rows('README.md')
    missing = [e.name for e in registered_methods() if e.name not in rows]
    assert not missing, f'README.md method table: no row whose registered type is {missing}'
    for entry in registered_methods():
        number, cells = rows[entry.name]
        assert cells[0].startswith(entry.display_name), \
            f'README.md:{number}: the row of {entry.name} should start with ' \
            f'{entry.display_name!r}, got {cells[0]!r}'
    unknown = sorted(set(rows) - {e.name for e in registered_methods()})
    assert not unknown, f'README.md method table: rows of unregistered types {unknown}'


def _signature_defaults(cls) -> Dict[str, object]:
    return {name: p.default for name, p in inspect.signature(cls).parameters.items()}


@pytest.mark.parametrize('doc', METHOD_TABLE_DOCS)
def test_method_table_defaults_are_the_signature_defaults(doc):
    """Every `name=value` of the defaults column equals the signature default, unless that
    is None (mode-dependent, resolved in the constructor, e.g. TaT's connectors)."""
    classes = {e.name: e.cls for e in registered_methods()}
    wrong = []
    for kind, (number, cells) in _method_rows(doc).items():
        assert kind in classes, f'{doc}:{number}: {kind} is not a registered method'
        defaults, seen = _signature_defaults(classes[kind]), set()
        for span in CODE_SPAN.findall(cells[2]):
            if '=' not in span:
                continue
            name, text = (part.strip() for part in span.split('=', 1))
            if not re.fullmatch(r'\w+', name):
                continue      # not `parameter=value`
            if name in seen:
                # A second value of a parameter introduces another mode's values
                # (TaT's `mode='global'`: ...; `mode='hierarchical'`: ...): not defaults.
                continue
            seen.add(name)
            if name not in defaults:
                wrong.append(f'{doc}:{number}: {kind} has no parameter {name!r} (`{span}`)')
                continue
            try:
                value = ast.literal_eval(text)
            except (ValueError, SyntaxError):
                continue      # not a Python literal (prose in the span): not checked
            if defaults[name] is not None and value != defaults[name]:
                wrong.append(f'{doc}:{number}: {kind} `{span}` but its signature default is '
                             f'{name}={defaults[name]!r}')
    assert not wrong, 'Method table defaults that are not the code\'s:\n' + '\n'.join(wrong)


@pytest.mark.parametrize('doc', METHOD_TABLE_DOCS)
def test_method_table_taps_include_the_default_taps(doc, tap_tables):
    classes = {e.name: e.cls for e in registered_methods()}
    known = set().union(*tap_tables.values())
    wrong = []
    for kind, (number, cells) in _method_rows(doc).items():
        defaults = _signature_defaults(classes[kind])
        # A span naming one of the method's parameters (DKD's `ignore_index`) is no tap.
        named = [span for span in CODE_SPAN.findall(cells[3])
                 if re.fullmatch(r'\w+', span) and span not in defaults]
        default = defaults['taps']
        if not set(default) <= set(named):
            wrong.append(f'{doc}:{number}: {kind} reads {default} by default; the row names '
                         f'{named}')
        wrong += [f'{doc}:{number}: {kind} names tap {tap!r}, in no built model\'s tap table'
                  for tap in named if tap not in known]
    assert not wrong, '\n'.join(wrong)


# --- tap tables ------------------------------------------------------------------------------

@pytest.fixture(scope='module')
def tap_tables() -> Dict[str, Set[str]]:
    """Tap names of built models by family: the classifiers (a CIFAR ResNet, 3 stages, and
    an ImageNet ResNet, 4 stages) and the DeepLabV3+ segmentor."""
    import tasks.classification  # noqa: F401
    import tasks.segmentation  # noqa: F401

    def taps(cfg: dict) -> Set[str]:
        return set(MODELS.build(cfg).tap_points)
    return dict(
        classifier=taps(dict(type='ImageClassifier', net=dict(type='resnet8x4'))) |
        taps(dict(type='ImageClassifier', net=dict(type='tv_resnet18', num_classes=10))),
        segmentor=taps(dict(type='DeepLabV3PlusSegmentor', encoder='resnet18',
                            num_classes=21)))


# (doc, passage start, passage end, family): the passages listing a family's tap names.
TAP_LISTS = [
    ('README.md', 'each network declares a tap table', 'The Distiller registers', 'classifier'),
    ('docs/segmentation.md', '**Taps** of the segmentor', '**Methods on dense maps**',
     'segmentor'),
]


def _tap_names(span: str) -> List[str]:
    """Tap names a code span lists: `name`, `stage1..stage5`, `stage1..3|4` (3 or 4 stages:
    stage1 to stage4)."""
    found = re.fullmatch(r'([a-z_]+)(\d)\.\.(?:[a-z_]+)?(\d)(?:\|(\d))?', span)
    if found:
        prefix, first, last, alternative = found.groups()
        return [f'{prefix}{i}' for i in range(int(first), int(alternative or last) + 1)]
    return [span] if re.fullmatch(r'\w+', span) else []


@pytest.mark.parametrize('doc, start, end, family', TAP_LISTS, ids=[d for d, *_ in TAP_LISTS])
def test_listed_taps_are_in_the_built_models(doc, start, end, family, tap_tables):
    text = _text(doc)
    assert start in text and end in text.split(start, 1)[1], \
        f'{doc}: the tap list between "{start}" and "{end}" is gone (update TAP_LISTS)'
    passage = text.split(start, 1)[1].split(end, 1)[0]
    names = [tap for span in CODE_SPAN.findall(passage) for tap in _tap_names(span)]
    assert len(names) >= 5, f'{doc}: only {names} found in the tap list'
    missing = [tap for tap in names if tap not in tap_tables[family]]
    assert not missing, (f'{doc} lists the {family} taps {missing}, not in a built '
                         f'{family}\'s tap_points {sorted(tap_tables[family])}')


# In a code span, `taps=('a', 'b')` or `taps="['a']"`; in prose, "the `name` tap".
TAPS_ARGUMENT = re.compile(r'taps="?[(\[]([^)\]]*)[)\]]')
NAMED_TAP = re.compile(r'`([a-z_0-9]+)` tap\b')      # not placeholders (`stageN`)


def _tap_mentions(doc: str) -> Iterator[Tuple[int, str]]:
    for number, code in _code_lines(doc):
        for listed in TAPS_ARGUMENT.findall(code):
            for tap in re.findall(r"'(\w+)'", listed):
                yield number, tap
    for number, line in enumerate(_read(doc), 1):
        for tap in NAMED_TAP.findall(line):
            yield number, tap


def test_taps_named_anywhere_in_the_docs_exist(tap_tables):
    known = set().union(*tap_tables.values())
    mentions = [(doc, number, tap) for doc in DOCS for number, tap in _tap_mentions(doc)]
    assert len(mentions) >= 5, f'only {mentions} found: the scan is broken'
    wrong = [f'{doc}:{number}: tap {tap!r}' for doc, number, tap in mentions
             if tap not in known]
    assert not wrong, 'Taps the docs name that no built model declares:\n' + '\n'.join(wrong)
