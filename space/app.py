"""The book's chat app as a Hugging Face Space.

Deploy: create a Gradio Space, push this folder, and add GEMINI_API_KEY as a secret in the Space's
settings (optionally GEMINI_MODEL too). Without the secret the Space answers with a small local
model, SmolLM2-135M-Instruct, downloaded from the Hub, and says so in the page.
"""

import dataclasses
import os

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
if os.environ.get("SPACE_ID"):  # on a Space the server must listen on all interfaces
    os.environ.setdefault("GENAI_APP_HOST", "0.0.0.0")

from genai_lib import app  # noqa: E402

config = app.AppConfig.from_env(profile="hub")
if config.local_model is None:  # GENAI_APP_LOCAL_MODEL unset: the small model, not the hub profile's 1.7 B one
    config = dataclasses.replace(config, local_model="HuggingFaceTB/SmolLM2-135M-Instruct")
backend = app.pick_backend(config)
demo = app.build_ui(backend, config)

if __name__ == "__main__":
    app.launch(demo, config)
