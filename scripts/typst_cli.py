"""A `typst` command for myst, backed by the `typst` PyPI package (Python bindings of the compiler).

myst renders PDFs through Typst by running ``typst compile "<file>.typ"``; the PyPI ``typst``
package has the compiler but no command. ``scripts/bin/typst`` calls this file, which understands
the part of Typst's command line that myst and people use::

    typst compile INPUT [OUTPUT] [--root DIR] [--font-path DIR] [--package-path DIR] [--format pdf|png|svg]
    typst --version

Packages: ``@preview/...`` imports are looked up under ``--package-path`` or ``TYPST_PACKAGE_PATH``,
by default the book's ``templates/typst/packages`` (which holds local ``tablex`` and ``subpar``), so nothing is
downloaded. Fonts: Typst's embedded fonts plus the system's.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DEFAULT_PACKAGES = REPO / "templates" / "typst" / "packages"


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    import typst

    if argv[:1] in (["--version"], ["-V"]):
        from importlib import metadata

        print(f"typst {metadata.version('typst')} (Python bindings, via genai book scripts/typst_cli.py)")
        return 0
    parser = argparse.ArgumentParser(prog="typst")
    sub = parser.add_subparsers(dest="cmd", required=True)
    for name in ("compile", "c"):
        p = sub.add_parser(name)
        p.add_argument("input")
        p.add_argument("output", nargs="?")
        p.add_argument("--root")
        p.add_argument("--font-path", action="append", default=[])
        p.add_argument("--package-path", default=os.environ.get("TYPST_PACKAGE_PATH", str(DEFAULT_PACKAGES)))
        p.add_argument("--format", "-f", choices=["pdf", "png", "svg"])
        p.add_argument("--ppi", type=float)
    args = parser.parse_args(argv)
    src = Path(args.input)
    fmt = args.format or (Path(args.output).suffix.lstrip(".") if args.output else "pdf")
    out = Path(args.output) if args.output else src.with_suffix(f".{fmt}")
    root = Path(args.root) if args.root else src.resolve().parent
    try:
        typst.compile(str(src), output=str(out), root=str(root), font_paths=args.font_path, format=fmt,
                      ppi=args.ppi, package_path=args.package_path)
    except typst.TypstError as err:  # structured diagnostics: message, hints, trace
        print(f"error: {err.message}", file=sys.stderr)
        for hint in err.hints:
            print(f"  hint: {hint}", file=sys.stderr)
        for line in err.trace:
            print(f"  at {line}", file=sys.stderr)
        return 1
    except RuntimeError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
