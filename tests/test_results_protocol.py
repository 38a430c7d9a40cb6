"""Benchmark tables state each number's protocol: best/last epoch on the test split, or
chosen on a held-out validation split then tested (final_metrics.json)."""
import csv
import json

from kdbench.benchmark.results import (PROTOCOL_LEGEND, markdown_table, matrix_table,
                                       seed_numbers, summarize, write_results_csv)

METRIC = 'accuracy/top1'


def _run_dir(root, values, final=None):
    logs = root / '20260101_000000' / 'vis_data'
    logs.mkdir(parents=True)
    (logs / 'scalars.json').write_text(''.join(
        json.dumps({METRIC: v, 'step': i}) + '\n' for i, v in enumerate(values)))
    if final is not None:
        (root / 'final_metrics.json').write_text(json.dumps(final))
    return str(root)


def test_test_protocol_runs_give_best_and_last_epoch_on_test(tmp_path):
    final = dict(protocol='test', val={METRIC: 62.0}, test={METRIC: 62.0})
    for work_dir in (_run_dir(tmp_path / 'a', [50.0, 62.0, 60.0], final),
                     _run_dir(tmp_path / 'b', [50.0, 62.0, 60.0])):   # before final_metrics
        assert seed_numbers(work_dir, METRIC) == dict(protocol='test', best=62.0, last=60.0)


def test_holdout_runs_give_the_test_value_chosen_on_validation(tmp_path):
    final = dict(protocol='holdout', val={METRIC: 70.0}, test={METRIC: 66.5})
    work_dir = _run_dir(tmp_path, [55.0, 70.0, 68.0], final)         # validation values
    assert seed_numbers(work_dir, METRIC) == dict(protocol='holdout', chosen=66.5, val=70.0)
    assert seed_numbers(work_dir, 'mIoU') == {}


def _row(name, role, best=(), last=(), chosen=(), seeds=()):
    return dict(name=name, role=role, teacher='T' if role != 'baseline' else '',
                student='S' if role != 'teacher' else '', paper=None, status='done',
                work_dir='w', seconds=None, metric=METRIC, seeds=list(seeds),
                best=summarize(best), last=summarize(last), chosen=summarize(chosen))


def test_tables_show_chosen_numbers_apart_and_count_their_seeds():
    rows = [_row('teacher T', 'teacher', [80.0], [79.0], seeds=[{}]),
            _row('baseline S', 'baseline', [70.0], [69.0], seeds=[{}]),
            _row('KD T -> S', 'KD', [72.0], [71.0], seeds=[{}]),
            _row('KD tuned', 'KD tuned', chosen=[71.0, 70.0], seeds=[{}, {}])]
    lines = markdown_table(rows).splitlines()
    assert lines[0] == ('| run | seeds done | best | last | vs baseline | paper | Δ paper | '
                        'source | chosen | time | status |')
    tuned = lines[-1].split(' | ')
    assert tuned[1] == '2/2' and tuned[2] == '-' and tuned[8] == '70.50 ± 0.71'
    assert lines[4].split(' | ')[8] == '-'
    matrix = matrix_table(rows).splitlines()
    assert matrix[0] == '| teacher -> student | teacher | student | KD | KD tuned |'
    assert matrix[2] == '| T -> S | 80.00 | 70.00 | 72.00 | 70.50† |'
    assert 'chosen on a validation split held out' in PROTOCOL_LEGEND


def test_results_csv_states_each_seeds_protocol(tmp_path):
    rows = [_row('KD T -> S', 'KD', [72.0], [71.0], seeds=[
        dict(seed=0, status='done', work_dir='a', protocol='test', best=72.0, last=71.0)]),
        _row('KD tuned', 'KD tuned', chosen=[71.0], seeds=[
            dict(seed=0, status='done', work_dir='b', protocol='holdout', chosen=71.0)])]
    write_results_csv(rows, str(tmp_path / 'results.csv'))
    with open(tmp_path / 'results.csv') as f:
        records = list(csv.DictReader(f))
    assert [(r['protocol'], r['best'], r['last'], r['chosen']) for r in records] == [
        ('test', '72.0', '71.0', ''), ('holdout', '', '', '71.0')]


def test_vs_baseline_compares_numbers_of_one_protocol():
    rows = [_row('baseline S', 'baseline', chosen=[70.0, 72.0], seeds=[{}, {}]),
            _row('KD T -> S', 'KD', chosen=[75.0, 75.0], seeds=[{}, {}]),
            _row('AT T -> S', 'AT', [74.0], [73.0], seeds=[{}])]
    lines = [line.split(' | ') for line in markdown_table(rows).splitlines()[2:]]
    assert lines[0][4] == '-'                           # the baseline itself
    assert lines[1][4] == '+4.00 ± 1.00'                # chosen against chosen
    assert lines[2][4] == '-'                           # best epoch against chosen: no
