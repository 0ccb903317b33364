"""Entry point myst runs to render the site (template.yml: build.render). See booksite/build.py."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from booksite.build import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
