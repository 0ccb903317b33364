"""The book build, split by job; ``scripts/build_book.py`` is the entry point that runs them in order.

- ``processes``: every process the build starts, and the build's own Jupyter server;
- ``project``: the table of contents, executable pages, declared exports, the site mode;
- ``cache``: the ``genai_lib`` hash and the execution cache;
- ``myst``: running myst and streaming its log;
- ``mystlog``: reading myst's log (notebook errors named by cell, executed/cached pages, other errors);
- ``exports``: checking the docx/PDF exports, and publishing them to the site's downloads;
- ``docx``: finishing myst's Word file (front matter, Office Math equations, styles, properties).
"""


class BuildError(RuntimeError):
    """The build failed; the message says what failed and what to do."""
