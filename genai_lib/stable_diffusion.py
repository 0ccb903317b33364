"""The paper's Stable Diffusion, through ``diffusers``' pipelines (the ``hub`` profile).

The book's own diffusion model (:mod:`genai_lib.diffusion`) is small enough to train on a CPU;
this module is only the glue to the paper's checkpoint, ``stable-diffusion-v1-5``: load one of its
three pipelines (text-to-image, image-to-image, inpainting), run it with the knobs the chapter
discusses, and write a minuscule random checkpoint of the same layout so that the code path runs
offline (tests and the ``tiny`` profile).

Typical use::

    from genai_lib import stable_diffusion as sd
    pipe = sd.load("text2image")                       # fp16 + attention slicing on CUDA
    image = sd.generate(pipe, "A quantum computer in a futuristic lab", seed=0)[0]
"""

from __future__ import annotations

import torch

from genai_lib.core import GenAIError, get_device
from genai_lib.registry import resolve


# [start:load]
def load(kind: str = "text2image", profile: str | None = None, path: str | None = None, device: str | None = None,
         fp16: bool | None = None, attention_slicing: bool = True):
    """The paper's ``StableDiffusionPipeline`` (or its img2img / inpainting siblings).

    Args:
        kind: "text2image", "img2img" or "inpaint" (all three share one checkpoint's components).
        profile: whose ``text2image`` model; the active profile when ``None``.
        path: a Hub id or local folder; default :func:`genai_lib.registry.resolve` of ``text2image``,
            i.e. ``stable-diffusion-v1-5/stable-diffusion-v1-5`` at its pinned revision in the ``hub``
            profile (or the folder in ``GENAI_MODEL_TEXT2IMAGE``).
        device: default :func:`genai_lib.core.get_device`.
        fp16: half precision (default: on CUDA only); halves the memory to ~2.6 GB of weights.
        attention_slicing: compute attention in slices, trading a little speed for memory.

    Returns:
        A diffusers pipeline on ``device``.
    """
    from diffusers import StableDiffusionImg2ImgPipeline, StableDiffusionInpaintPipeline, StableDiffusionPipeline

    classes = {"text2image": StableDiffusionPipeline, "img2img": StableDiffusionImg2ImgPipeline,
               "inpaint": StableDiffusionInpaintPipeline}
    if kind not in classes:
        raise GenAIError(f"Unknown pipeline kind {kind!r}; choose one of {', '.join(classes)}.")
    device = device or get_device()
    half = device.startswith("cuda") if fp16 is None else fp16
    src = resolve("text2image", profile, path)
    pipe = classes[kind].from_pretrained(src.source, revision=src.revision,
                                         dtype=torch.float16 if half else torch.float32)
    pipe = pipe.to(device)
    if attention_slicing:
        pipe.enable_attention_slicing()
    pipe.set_progress_bar_config(disable=True)
    return pipe


def generate(pipe, prompt: str, negative_prompt: str | None = None, guidance_scale: float = 7.5,
             steps: int = 30, seed: int = 0, **kwargs):
    """Run a Stable Diffusion pipeline with the knobs the book discusses; returns a list of PIL images.

    ``kwargs`` go to the pipeline (``image=``, ``strength=`` for img2img; ``image=``, ``mask_image=``
    for inpainting; ``height=``, ``width=``).
    """
    if not prompt or not isinstance(prompt, str):
        raise GenAIError("prompt must be a non-empty string.")
    if not isinstance(steps, int) or steps < 1:
        raise GenAIError(f"steps must be a positive integer, got {steps!r}.")
    gen = torch.Generator(device="cpu").manual_seed(seed)
    return pipe(prompt, negative_prompt=negative_prompt, guidance_scale=guidance_scale, num_inference_steps=steps,
                generator=gen, **kwargs).images
# [end:load]


def save_tiny(folder: str) -> str:
    """Write a minuscule, random Stable Diffusion checkpoint (same classes and layout) to ``folder``.

    It exercises the ``hub`` code path offline: tests and the ``tiny`` profile load it with
    :func:`load` exactly as the real checkpoint is loaded from the Hub.
    """
    import json
    from pathlib import Path

    from diffusers import AutoencoderKL, DDIMScheduler, StableDiffusionPipeline, UNet2DConditionModel
    from tokenizers import pre_tokenizers
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    torch.manual_seed(0)
    unet = UNet2DConditionModel(sample_size=8, in_channels=4, out_channels=4, block_out_channels=(16, 32),
                                layers_per_block=1, norm_num_groups=8, cross_attention_dim=16, attention_head_dim=4,
                                down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
                                up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"))
    vae_kl = AutoencoderKL(in_channels=3, out_channels=3, block_out_channels=(16, 32), layers_per_block=1,
                           norm_num_groups=8, latent_channels=4, down_block_types=("DownEncoderBlock2D",) * 2,
                           up_block_types=("UpDecoderBlock2D",) * 2, sample_size=16)
    text = CLIPTextModel(CLIPTextConfig(vocab_size=514, hidden_size=16, intermediate_size=32, num_hidden_layers=2,
                                        num_attention_heads=2, max_position_embeddings=77, bos_token_id=512,
                                        eos_token_id=513, pad_token_id=513, projection_dim=16))
    tmp = Path(folder) / "_tokenizer_src"
    tmp.mkdir(parents=True, exist_ok=True)
    chars = sorted(pre_tokenizers.ByteLevel.alphabet())   # a byte-level vocabulary with no merges
    vocab = {c: i for i, c in enumerate(chars + [c + "</w>" for c in chars] + ["<|startoftext|>", "<|endoftext|>"])}
    (tmp / "vocab.json").write_text(json.dumps(vocab))
    (tmp / "merges.txt").write_text("#version: 0.2\n")
    tok = CLIPTokenizer(str(tmp / "vocab.json"), str(tmp / "merges.txt"), model_max_length=77)
    sched = DDIMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", clip_sample=False,
                          set_alpha_to_one=False, steps_offset=1)
    pipe = StableDiffusionPipeline(unet=unet, vae=vae_kl, text_encoder=text, tokenizer=tok, scheduler=sched,
                                   safety_checker=None, feature_extractor=None, requires_safety_checker=False)
    pipe.save_pretrained(folder)
    return folder
