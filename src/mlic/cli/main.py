"""``mlic``: the command-line entry point.

Exit codes: 0 success, 1 usage error, 2 bad input or file. Errors are printed
as one line on stderr; ``--debug`` shows the traceback instead.
"""

from __future__ import annotations

import argparse
import sys
import traceback
from pathlib import Path

from .. import __version__
from ..errors import MlicError

EXIT_OK, EXIT_USAGE, EXIT_INPUT = 0, 1, 2


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # argparse exits 2 by default; usage errors are 1 here
        self.print_usage(sys.stderr)
        print(f"mlic: error: {message}", file=sys.stderr)
        raise SystemExit(EXIT_USAGE)


def _cmd_convert_official(args) -> int:
    from ..io import save_model
    from ..official import load_official_checkpoint

    out = Path(args.output)
    if out.exists() and not args.force:
        raise MlicError(f"{out} exists; use --force to overwrite")
    model = load_official_checkpoint(args.checkpoint)
    save_model(model, out, {"source": f"official MLIC++ checkpoint {Path(args.checkpoint).name}"})
    cfg = model.config
    n = sum(p.numel() for p in model.parameters())
    print(f"{out}: mlic-plusplus ({'legacy' if cfg.legacy else 'current'} LRP/g_s, N={cfg.N}, M={cfg.M}, {n:,} parameters)")
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="mlic", description="MLIC, MLIC+ and MLIC++ learned image codecs.")
    p.add_argument("--version", action="version", version=f"mlic {__version__}")
    p.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True

    c = sub.add_parser(
        "convert-official",
        help="convert an official MLIC++ checkpoint to mlic safetensors weights",
        description="Read an official MLIC++ checkpoint (.pth.tar, read with weights_only=True), detect "
        "its variant (legacy 2023 or current LRP/g_s), rebuild coding tables and write mlic weights.",
    )
    c.add_argument("checkpoint", help="official checkpoint file")
    c.add_argument("-o", "--output", required=True, help="output .safetensors file")
    c.add_argument("--force", action="store_true", help="overwrite OUTPUT if it exists")
    c.set_defaults(func=_cmd_convert_official)
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except MlicError as exc:
        if args.debug:
            traceback.print_exc()
        print(f"mlic: error: {exc}", file=sys.stderr)
        return EXIT_INPUT
    except KeyboardInterrupt:
        print("mlic: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
