"""``python -m genai_lib.prepare``: prepare the offline models once and print where they are."""

from __future__ import annotations

import time

from genai_lib.registry import prepare_offline_models


def main() -> None:
    start = time.perf_counter()
    for role, path in prepare_offline_models().items():
        print(f"{role:12s} {path}")
    print(f"models ready in {time.perf_counter() - start:.1f} s")


if __name__ == "__main__":
    main()
