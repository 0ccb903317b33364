"""Load test of the chat app: N concurrent chats through ``gradio_client`` against the stand-in Gemini.

The app runs as its own process, started the way a user starts it (``python -m genai_lib.app``), with
``GEMINI_API_KEY`` and ``GOOGLE_GEMINI_BASE_URL`` pointing the real SDK at the local stand-in server
(tests/gemini_standin.py), which streams every answer in chunks with a small delay. The whole run is
bounded in time. Prints JSON lines: one per round (errors, median and p95 latency, server RSS), then a
summary with the memory growth between the first and the last round (goal: flat).

    PYTHONPATH=$PWD python bench/app_load.py --chats 50 --rounds 3
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
from gemini_standin import StandIn  # noqa: E402

from genai_lib.core import free_port  # noqa: E402


def rss_mb(pid: int) -> float:
    """Resident memory of a process in MiB (from /proc, no extra dependency)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def wait_for(url: str, proc: subprocess.Popen, timeout: float) -> None:
    import urllib.request

    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise RuntimeError(f"the app exited with code {proc.returncode}")
        try:
            urllib.request.urlopen(url + "/config", timeout=2)
            return
        except OSError:
            time.sleep(0.3)
    raise TimeoutError(f"the app did not answer at {url} within {timeout} s")


def one_round(clients: list, round_no: int, deadline: float) -> dict:
    """Each client (one user with its own session) sends one chat, all at once; wait for all of them.

    Latency = submit -> final answer. In round r (from 0) each user's conversation already holds r
    exchanges, so the stand-in's answer must say "number 2r+1": a mix-up of sessions would show.
    """
    starts, jobs = [], []
    for i, client in enumerate(clients):
        starts.append(time.perf_counter())
        jobs.append(client.submit(f"Question {i}: what is a GAN?", "Be brief.", 0.7, 0.95, 128, api_name="/chat"))
    latencies, errors, mixups = [], 0, 0
    for i, (t0, job) in enumerate(zip(starts, jobs)):
        try:
            answer = job.result(timeout=max(0.1, deadline - time.monotonic()))
            ok = "Stand-in answer" in answer and "Answered by Gemini" in answer
            mixups += f"number {2 * round_no + 1} to: Question {i}:" not in answer
            errors += not ok
            if ok:
                latencies.append(time.perf_counter() - t0)
        except Exception:  # a timeout or a rejected job both count as errors
            errors += 1
    latencies.sort()
    p95 = latencies[min(len(latencies) - 1, int(round(0.95 * (len(latencies) - 1))))] if latencies else None
    return {"chats": len(clients), "errors": errors, "history_mixups": mixups, "median_s": round(statistics.median(latencies), 3) if latencies else None,
            "p95_s": round(p95, 3) if p95 else None, "max_s": round(latencies[-1], 3) if latencies else None}


def run(chats: int = 50, rounds: int = 3, time_limit: float = 240.0, chunk_delay: float = 0.05,
        emit=print) -> dict:
    """Run the load test and return the summary (also emitted as JSON lines through ``emit``)."""
    from gradio_client import Client

    t_start = time.monotonic()
    with StandIn(chunk_delay=chunk_delay) as server:
        port = free_port()
        env = {**os.environ, "GEMINI_API_KEY": server.key, "GOOGLE_GEMINI_BASE_URL": server.url,
               "GENAI_APP_HOST": "127.0.0.1", "GENAI_APP_PORT": str(port), "GRADIO_ANALYTICS_ENABLED": "False",
               "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
        proc = subprocess.Popen([sys.executable, "-m", "genai_lib.app"], env=env, cwd=ROOT,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            url = f"http://127.0.0.1:{port}"
            wait_for(url, proc, timeout=min(120.0, time_limit))
            with ThreadPoolExecutor(8) as pool:  # one client per simulated user, each with its own session
                clients = list(pool.map(lambda _: Client(url, verbose=False), range(chats)))
            clients[0].predict("warm-up", "", 0.7, 0.95, 64, api_name="/chat")
            clients[0].reset_session()
            rss0 = rss_mb(proc.pid)
            results = []
            for r in range(rounds):
                deadline = t_start + time_limit
                res = one_round(clients, r, deadline)
                res.update(round=r + 1, server_rss_mb=round(rss_mb(proc.pid), 1))
                emit(json.dumps(res))
                results.append(res)
                if time.monotonic() > deadline:
                    break
            for client in clients:
                client.close()
        finally:
            proc.terminate()
            try:
                _, err = proc.communicate(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                _, err = proc.communicate()
    lat_med = [r["median_s"] for r in results if r["median_s"] is not None]
    summary = {"summary": True, "chats_per_round": chats, "rounds": len(results),
               "errors": sum(r["errors"] for r in results), "history_mixups": sum(r["history_mixups"] for r in results),
               "worst_round_median_s": max(lat_med) if lat_med else None,
               "worst_round_p95_s": max((r["p95_s"] for r in results if r["p95_s"]), default=None),
               "server_rss_mb_warm": round(rss0, 1), "server_rss_mb_end": results[-1]["server_rss_mb"],
               "rss_growth_after_round1_mb": round(results[-1]["server_rss_mb"] - results[0]["server_rss_mb"], 1),
               "requests_seen_by_standin": len(server.requests), "wall_s": round(time.monotonic() - t_start, 1),
               "server_log_has_traceback": "Traceback" in err.decode(errors="replace")}
    emit(json.dumps(summary))
    return summary


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--chats", type=int, default=50, help="concurrent users (one chat each per round)")
    ap.add_argument("--rounds", type=int, default=3, help="rounds (memory is compared between them)")
    ap.add_argument("--time-limit", type=float, default=240.0, help="seconds for the whole run")
    ap.add_argument("--chunk-delay", type=float, default=0.05, help="stand-in seconds between streamed chunks")
    args = ap.parse_args()
    s = run(args.chats, args.rounds, args.time_limit, args.chunk_delay)
    sys.exit(0 if s["errors"] == 0 else 1)


if __name__ == "__main__":
    main()
