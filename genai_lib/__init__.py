"""genai_lib: the small library behind the executable book on Generative AI.

One module per generator family (``text``, ``gpt``, ``gan``, ``vae``, ``diffusion``, ``audio``,
``app`` ...) plus a small shared core (:mod:`genai_lib.core`: profiles, device, seeding, cache) and a
model registry (:mod:`genai_lib.registry`). Importing the package does no work: modules load models
only when asked.
"""

__version__ = "0.1.0"
