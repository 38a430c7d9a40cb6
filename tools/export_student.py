"""Export the plain student network of a checkpoint (docs/weights.md).

    python tools/export_student.py CHECKPOINT OUT [--trust-checkpoint]

Writes the bare network's state dict (no ``student.``/``net.`` prefixes, no optimizer or
message hub), loadable with ``torch.load(OUT, weights_only=True)`` and ``load_state_dict``
into the torchvision / smp / CIFAR network the task model wraps.
"""
import argparse

from kdbench.apis.cli import add_trust_option
from kdbench.utils.export import export_student


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('checkpoint', help='a Distiller or task-model checkpoint')
    parser.add_argument('out', help='where the state dict goes (.pth)')
    add_trust_option(parser)
    args = parser.parse_args()
    state = export_student(args.checkpoint, args.out, args.trust_checkpoint)
    print(f'Wrote {len(state)} tensors of the student network to {args.out}')


if __name__ == '__main__':
    main()
