"""Render the paper's Word file the way a reader's word processor does, to look at it.

LibreOffice Writer (Debian ``libreoffice-writer``; not needed by the build or the tests) converts
``exports/paper.docx`` to PDF headless; poppler's ``pdftoppm`` turns chosen pages into PNGs under
``test-artifacts/``. The script prints one JSON line: pages, the time taken and the PNG files, so
that a person can open them and check that the
equations are real equations, the captions are there, and code is set in a monospaced font.

Usage::

    .venv/bin/python bench/render_docx.py [--docx exports/paper.docx] [--pages 1,2,3] [--dpi 70]
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--docx", type=Path, default=REPO / "exports" / "paper.docx")
    ap.add_argument("--out", type=Path, default=REPO / "test-artifacts")
    ap.add_argument("--pages", default="1,2,3", help="pages to save as PNG (comma-separated, or 'all')")
    ap.add_argument("--dpi", type=int, default=70)
    args = ap.parse_args(argv)
    soffice = shutil.which("soffice") or shutil.which("libreoffice")
    if soffice is None:
        print("LibreOffice is not installed: `apt-get install --no-install-recommends libreoffice-writer`.",
              file=sys.stderr)
        return 2
    if not args.docx.exists():
        print(f"{args.docx} does not exist: build the book first (make book).", file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        profile = Path(tmp) / "profile"  # a private LibreOffice profile: no clash with a running one
        res = subprocess.run([soffice, f"-env:UserInstallation=file://{profile}", "--headless", "--convert-to",
                              "pdf", "--outdir", tmp, str(args.docx)], capture_output=True, text=True, timeout=300)
        pdf = Path(tmp) / (args.docx.stem + ".pdf")
        if res.returncode != 0 or not pdf.exists():
            print(f"LibreOffice failed: {res.stderr.strip()[-500:]}", file=sys.stderr)
            return 1
        seconds = time.perf_counter() - t0
        kept = args.out / f"{args.docx.stem}-docx-libreoffice.pdf"
        shutil.copyfile(pdf, kept)
    info = subprocess.run(["pdfinfo", str(kept)], capture_output=True, text=True, check=True).stdout
    pages = int(re.search(r"^Pages:\s+(\d+)", info, re.M).group(1))
    wanted = range(1, pages + 1) if args.pages == "all" else [int(p) for p in args.pages.split(",") if p.strip()]
    pngs = []
    for page in wanted:
        if 1 <= page <= pages:
            stem = args.out / f"{args.docx.stem}-docx-page{page}"
            subprocess.run(["pdftoppm", "-r", str(args.dpi), "-png", "-singlefile", "-f", str(page), "-l", str(page),
                            str(kept), str(stem)], check=True)
            pngs.append(str(stem.with_suffix(".png").relative_to(REPO) if stem.is_relative_to(REPO) else stem))
    print(json.dumps({"docx": str(args.docx), "pdf": str(kept), "pages": pages,
                      "seconds": round(seconds, 1), "png": pngs}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
