# Sourced by the launcher scripts: PYTHON = $PYTHON if set, else the repository's
# .venv/bin/python when present, else `python` from PATH.
KDBENCH_TOOLS=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
if [[ -z "${PYTHON:-}" ]]; then
    if [[ -x "$KDBENCH_TOOLS/../.venv/bin/python" ]]; then
        PYTHON=$KDBENCH_TOOLS/../.venv/bin/python
    else
        PYTHON=python
    fi
fi
