"""kdbench/utils imports in one direction: no module of it imports, even lazily inside a
function, a module that imports it back (directly or through others)."""
import ast
from pathlib import Path
from typing import Dict, List, Optional, Set

from shared_setup import ROOT

UTILS = Path(ROOT) / 'kdbench' / 'utils'


def module_name(path: Path, package_dir: Path, package: str) -> str:
    parts = list(path.relative_to(package_dir).with_suffix('').parts)
    if parts[-1] == '__init__':
        parts = parts[:-1]
    return '.'.join([package, *parts])


def imported_modules(path: Path, name: str) -> Set[str]:
    """Every module ``path`` (module ``name``) imports anywhere in its code, relative
    imports resolved; ``from P import X`` counts as ``P`` and as ``P.X``."""
    is_package = path.name == '__init__.py'
    found: Set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ''
            if node.level:
                parts = name.split('.')
                keep = len(parts) - node.level + (1 if is_package else 0)
                base = '.'.join(parts[:keep] + ([node.module] if node.module else []))
            found.add(base)
            found.update(f'{base}.{alias.name}' for alias in node.names)
    return found


def import_graph(package_dir: Path, package: str) -> Dict[str, Set[str]]:
    """Module -> the modules of the same package it imports (itself excluded)."""
    files = {module_name(p, package_dir, package): p for p in package_dir.rglob('*.py')}
    graph = {}
    for name, path in files.items():
        targets = set()
        for imported in imported_modules(path, name):
            # 'kdbench.utils.weights.load_task_weights' -> the module 'kdbench.utils.weights'
            while imported and imported not in files:
                imported = imported.rpartition('.')[0]
            if imported and imported != name:
                targets.add(imported)
        graph[name] = targets
    return graph


def find_cycle(graph: Dict[str, Set[str]]) -> Optional[List[str]]:
    """One import circle ``[a, b, ..., a]`` of ``graph``, or ``None`` when it is acyclic."""
    state: Dict[str, str] = {}
    stack: List[str] = []

    def visit(node: str) -> Optional[List[str]]:
        state[node] = 'open'
        stack.append(node)
        for target in sorted(graph.get(node, ())):
            if state.get(target) == 'open':
                return stack[stack.index(target):] + [target]
            if target not in state:
                cycle = visit(target)
                if cycle:
                    return cycle
        state[node] = 'done'
        stack.pop()
        return None

    for node in sorted(graph):
        if node not in state:
            cycle = visit(node)
            if cycle:
                return cycle
    return None


def test_kdbench_utils_has_no_import_circle():
    graph = import_graph(UTILS, 'kdbench.utils')
    assert 'kdbench.utils.checkpoint' in graph['kdbench.utils.weights']   # the parse works
    cycle = find_cycle(graph)
    assert cycle is None, 'import circle in kdbench/utils: ' + ' -> '.join(cycle)


def test_a_circle_through_a_function_level_import_is_found(tmp_path):
    package = tmp_path / 'pkg'
    package.mkdir()
    (package / '__init__.py').write_text('from . import low\n')
    (package / 'low.py').write_text('def f():\n    from .high import g\n    return g\n')
    (package / 'high.py').write_text('from pkg.low import f\n\ndef g():\n    return f\n')
    (package / 'leaf.py').write_text('import os\n')
    graph = import_graph(package, 'pkg')
    assert graph == {'pkg': {'pkg.low'}, 'pkg.low': {'pkg.high'}, 'pkg.high': {'pkg.low'},
                     'pkg.leaf': set()}
    assert find_cycle(graph) == ['pkg.low', 'pkg.high', 'pkg.low']
    assert find_cycle({'a': {'b'}, 'b': {'c'}, 'c': set()}) is None
