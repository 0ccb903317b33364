"""The Stable Diffusion code path (the ``hub`` profile's checkpoint) on minuscule random local components."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from genai_lib import stable_diffusion as SD
from genai_lib.core import GenAIError

torch.set_num_threads(1)


# ----------------------------------------------------------------------------- the hub code path
@pytest.fixture(scope="module")
def tiny_sd(tmp_path_factory):
    return SD.save_tiny(str(tmp_path_factory.mktemp("tiny-sd")))


def test_stable_diffusion_pipelines_on_tiny_local_components(tiny_sd, monkeypatch):
    from diffusers import StableDiffusionImg2ImgPipeline, StableDiffusionInpaintPipeline, StableDiffusionPipeline
    from PIL import Image

    monkeypatch.setenv("GENAI_MODEL_TEXT2IMAGE", tiny_sd)  # what the hub profile resolves to a Hub id
    pipe = SD.load("text2image", device="cpu")
    assert isinstance(pipe, StableDiffusionPipeline)
    kw = dict(steps=2, height=16, width=16, guidance_scale=7.5)
    a = SD.generate(pipe, "a quantum computer in a futuristic lab", negative_prompt="blurry", seed=1, **kw)[0]
    b = SD.generate(pipe, "a quantum computer in a futuristic lab", negative_prompt="blurry", seed=1, **kw)[0]
    assert isinstance(a, Image.Image) and a.size == (16, 16)
    assert np.array_equal(np.asarray(a), np.asarray(b))  # the seed makes it repeatable
    i2i = SD.load("img2img", device="cpu")
    assert isinstance(i2i, StableDiffusionImg2ImgPipeline)
    out = SD.generate(i2i, "a lab", image=a, strength=0.5, steps=4, guidance_scale=7.5)[0]
    assert out.size == (16, 16)
    inp = SD.load("inpaint", device="cpu")
    assert isinstance(inp, StableDiffusionInpaintPipeline)
    mask = Image.new("L", (16, 16), 0)
    mask.paste(255, (0, 0, 8, 16))
    out = SD.generate(inp, "a lab", image=a, mask_image=mask, steps=2, height=16, width=16)[0]
    assert out.size == (16, 16)
    with pytest.raises(GenAIError, match="kind"):
        SD.load("video", device="cpu")
    with pytest.raises(GenAIError, match="prompt"):
        SD.generate(pipe, "")
