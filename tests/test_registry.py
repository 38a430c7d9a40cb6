"""kdbench/registry.py's MethodRegistry (register a method for a while, then remove it) and
the method table's explicit order (kdbench/distill/table.py METHOD_ORDER)."""
import pytest

from kdbench.distill import DistillMethod
from kdbench.distill.table import METHOD_ORDER, registered_methods
from kdbench.registry import DISTILL_METHODS


def _toy(name):
    return type(name, (DistillMethod,), dict(config_prefix=name.lower()))


def test_temporarily_registers_for_the_block_only():
    toy = _toy('ToyKD')
    with DISTILL_METHODS.temporarily(toy) as registered:
        assert registered is toy and DISTILL_METHODS.get('ToyKD') is toy
        with pytest.raises(KeyError, match='ToyKD'):       # a taken name is refused
            DISTILL_METHODS.register_module(module=_toy('ToyKD'))
    assert 'ToyKD' not in DISTILL_METHODS.module_dict


def test_temporarily_unregisters_after_an_error_and_under_another_name():
    with pytest.raises(RuntimeError):
        with DISTILL_METHODS.temporarily(_toy('ToyKD'), name='Other'):
            assert 'Other' in DISTILL_METHODS.module_dict
            raise RuntimeError
    assert 'Other' not in DISTILL_METHODS.module_dict


def test_unregister_returns_the_class_and_names_the_registered_ones():
    toy = _toy('ToyKD')
    DISTILL_METHODS.register_module(module=toy)
    assert DISTILL_METHODS.unregister('ToyKD') is toy
    with pytest.raises(KeyError, match=r"registered as 'ToyKD' in kdbench; registered: .*'KD'"):
        DISTILL_METHODS.unregister('ToyKD')


def test_the_table_lists_the_shipped_methods_in_method_order_then_the_others():
    shipped = [name for name, cls in DISTILL_METHODS.module_dict.items()
               if cls.__module__.startswith('kdbench.distill.')]
    assert sorted(METHOD_ORDER) == sorted(shipped)
    with DISTILL_METHODS.temporarily(_toy('ZetaKD')), DISTILL_METHODS.temporarily(_toy('AlphaKD')):
        names = [entry.name for entry in registered_methods()]
    assert names == [*METHOD_ORDER, 'ZetaKD', 'AlphaKD']
    assert [entry.name for entry in registered_methods()] == list(METHOD_ORDER)


def test_the_order_does_not_follow_registration():
    DISTILL_METHODS.register_module(module=DISTILL_METHODS.unregister('KD'))   # KD now last
    assert list(DISTILL_METHODS.module_dict)[-1] == 'KD'
    assert [entry.name for entry in registered_methods()] == list(METHOD_ORDER)
