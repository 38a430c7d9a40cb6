"""TaT loss step: batched vs per-image loop, global explicit vs memory-efficient vs
hierarchical (time and peak memory); see kdbench/benchmark/tat.py for what is measured.

    python tools/bench_tat.py [--comparisons loop global] [--maps 33x33 128x128 129x129]
                              [--batches 2 8] [--repeats 5] [--warmup 1] [--max-step-s 60]
                              [--no-memory] [--out result.json]
    python tools/bench_tat.py --smoke [--out result.json]   # tiny shapes, in-process
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from kdbench.benchmark.tat import main  # noqa: E402

if __name__ == '__main__':
    main()
