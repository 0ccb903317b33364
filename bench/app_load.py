"""Load test of the chat app through ``gradio_client`` against the stand-in Gemini, with and without limits.

The app runs as its own process, started the way a user starts it (``python -m genai_lib.app``), with
``GEMINI_API_KEY`` and ``GOOGLE_GEMINI_BASE_URL`` pointing the real SDK at the local stand-in server
(tests/gemini_standin.py), which streams every answer in chunks with a small delay and counts every
request it receives. Two modes print JSON lines:

* ``--mode limits`` (default): 200 scripted clients, each with its own address (``X-Forwarded-For``
  from loopback, which the server trusts), under a per-client daily limit. Half stay within it;
  the other half ask for more. Goals: 0 errors within the limits, every request over the limit
  refused with the polite message and never reaching the stand-in (its count must be exact), server
  memory flat between passes. Prints the median and 95th-percentile latency of answers and refusals.
* ``--mode chats``: N users chat at once for several rounds, no limits (queueing and session isolation).

    PYTHONPATH=$PWD nice -n 10 python bench/app_load.py                       # 200 clients, limits
    PYTHONPATH=$PWD nice -n 10 python bench/app_load.py --mode chats --chats 50 --rounds 3
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
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


def percentile(values: list[float], q: float) -> float | None:
    """The q-quantile (nearest rank) of ``values``, in seconds rounded to ms; ``None`` when empty."""
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))], 3)


def start_app(server: StandIn, port: int, limits: dict[str, str]) -> subprocess.Popen:
    """``python -m genai_lib.app`` on ``port``, answering with the stand-in, with the given limit variables."""
    env = {**os.environ, "GEMINI_API_KEY": server.key, "GOOGLE_GEMINI_BASE_URL": server.url,
           "GENAI_APP_HOST": "127.0.0.1", "GENAI_APP_PORT": str(port), "GRADIO_ANALYTICS_ENABLED": "False",
           "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""), **limits}
    env.pop("SPACE_ID", None)
    # The log goes to a file, not a pipe: nobody reads a pipe until the end, and once its 64 KiB buffer is
    # full every logging call in the app blocks (this stalled an earlier version of this benchmark).
    log = tempfile.TemporaryFile()
    proc = subprocess.Popen([sys.executable, "-m", "genai_lib.app"], env=env, cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=log)
    proc.log = log  # type: ignore[attr-defined]
    return proc


def stop_app(proc: subprocess.Popen) -> str:
    """Stop the app; return its log (stderr)."""
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    proc.log.seek(0)  # type: ignore[attr-defined]
    return proc.log.read().decode(errors="replace")  # type: ignore[attr-defined]


def run_limits(clients: int = 200, limit: int = 2, extra: int = 2, passes: int = 2, in_flight: int = 48,
               time_limit: float = 900.0, chunk_delay: float = 0.05, max_sessions: int | None = None,
               emit=print) -> dict:
    """200 clients against a per-client daily limit of ``limit`` answers; the odd half ask ``extra`` more.

    Each client is one user with its own address, asking its questions one after another (as a person
    does); at most ``in_flight`` clients are active at once, under the app's queue size. The workload
    runs ``passes`` times with new addresses; the server's memory is compared between passes. The app
    keeps at most ``max_sessions`` sessions (default: one pass's clients), so from the second pass on
    the memory must stay flat: every new session replaces a forgotten one.
    """
    from gradio_client import Client

    t_start = time.monotonic()
    deadline = t_start + time_limit
    with StandIn(chunk_delay=chunk_delay) as server, tempfile.TemporaryDirectory() as state:
        port = free_port()
        proc = start_app(server, port, {"GENAI_APP_PER_DAY": str(limit), "GENAI_APP_PER_MINUTE": "0",
                                        "GENAI_APP_DAILY_REQUESTS": "0", "GENAI_APP_DAILY_TOKENS": "0",
                                        "GENAI_APP_STATE_DIR": state,
                                        "GENAI_APP_MAX_SESSIONS": str(max_sessions or clients)})
        url = f"http://127.0.0.1:{port}"
        log = ""
        try:
            wait_for(url, proc, timeout=min(120.0, time_limit))
            warm = Client(url, verbose=False, headers={"X-Forwarded-For": "198.18.255.255"})
            warm.predict("warm-up", "", 0.7, 0.95, 64, api_name="/chat")
            warm.close()
            rss = [rss_mb(proc.pid)]
            records: list[tuple[bool, str, float, str]] = []  # (over-limit client?, kind, latency, text)
            lock = threading.Lock()
            connecting = threading.Semaphore(8)  # gradio_client reads the app's whole API on connecting

            def user(p: int, i: int) -> None:
                over = i % 2 == 1
                ip = f"198.18.{p * 8 + i // 256}.{i % 256}"  # a benchmark address range (RFC 2544)
                asks = limit + (extra if over else 0)
                try:
                    with connecting:
                        client = Client(url, verbose=False, headers={"X-Forwarded-For": ip})
                except Exception as exc:  # could not even connect: every question of this client failed
                    with lock:
                        records.extend([(over, "error", 0.0, f"ERROR connecting: {type(exc).__name__}")] * asks)
                    return
                try:
                    for q in range(asks):
                        t0 = time.perf_counter()
                        try:
                            answer = client.submit(f"Client {i} question {q}", "Be brief.", 0.7, 0.95, 128,
                                                   api_name="/chat").result(timeout=max(0.1, deadline - time.monotonic()))
                        except Exception as exc:  # a timeout or a rejected job
                            answer = f"ERROR {type(exc).__name__}"
                        took = time.perf_counter() - t0
                        if answer.startswith("Stand-in answer") and f"to: Client {i} question {q}" in answer:
                            kind = "answered"
                        elif "the daily limit for one person" in answer and "midnight UTC" in answer:
                            kind = "refused"
                        else:
                            kind = "error"
                        with lock:
                            records.append((over, kind, took, answer[:120]))
                finally:
                    client.close()

            for p in range(passes):
                with ThreadPoolExecutor(in_flight) as pool:
                    list(pool.map(lambda i: user(p, i), range(clients)))
                rss.append(rss_mb(proc.pid))
                emit(json.dumps({"pass": p + 1, "requests": len(records), "server_rss_mb": round(rss[-1], 1),
                                 "standin_calls": len(server.requests)}))
                if time.monotonic() > deadline:
                    break
        finally:
            log = stop_app(proc)
    within = [r for r in records if not r[0]]
    over = [r for r in records if r[0]]
    answered = [r[2] for r in records if r[1] == "answered"]
    refused = [r[2] for r in records if r[1] == "refused"]
    expected_calls = 1 + passes * clients * limit  # the warm-up + every allowed question, nothing else
    summary = {
        "summary": True, "mode": "limits", "clients_per_pass": clients, "passes": passes,
        "per_client_daily_limit": limit, "max_sessions": max_sessions or clients, "extra_asked_by_over_limit_clients": extra, "in_flight": in_flight,
        "requests": len(records),
        "errors_within_limits": sum(1 for r in within if r[1] != "answered"),
        "over_limit_clients_answered": sum(1 for r in over if r[1] == "answered"),
        "over_limit_requests_refused": sum(1 for r in over if r[1] == "refused"),
        "over_limit_requests_expected": passes * (clients // 2) * extra,
        "errors_over_limit_clients": sum(1 for r in over if r[1] == "error"),
        "standin_calls": len(server.requests), "standin_calls_expected": expected_calls,
        "answer_median_s": percentile(answered, 0.5), "answer_p95_s": percentile(answered, 0.95),
        "refusal_median_s": percentile(refused, 0.5), "refusal_p95_s": percentile(refused, 0.95),
        "server_rss_mb_warm": round(rss[0], 1), "server_rss_mb_per_pass": [round(x, 1) for x in rss[1:]],
        "rss_growth_between_passes_mb": round(rss[-1] - rss[1], 1) if len(rss) > 2 else None,
        "wall_s": round(time.monotonic() - t_start, 1), "server_log_has_traceback": "Traceback" in log,
        "errors_by_kind": {kind: sum(1 for r in records if r[1] == "error" and r[3].startswith(kind))
                           for kind in ("ERROR TimeoutError", "ERROR connecting", "ERROR")},
        "first_error": next((r[3] for r in records if r[1] == "error"), None),
        "passes_completed": len(rss) - 1, "time_limit_reached": time.monotonic() > deadline,
    }
    summary["ok"] = (summary["passes_completed"] == passes and summary["errors_within_limits"] == 0 and summary["errors_over_limit_clients"] == 0
                     and summary["over_limit_requests_refused"] == summary["over_limit_requests_expected"]
                     and summary["standin_calls"] == expected_calls and not summary["server_log_has_traceback"]
                     and (summary["rss_growth_between_passes_mb"] or 0) < 10)  # flat: < 10 MB after the first pass
    emit(json.dumps(summary))
    return summary


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
        # every user comes from 127.0.0.1 here: no limits, this mode measures the queue and the sessions
        proc = start_app(server, port, {"GENAI_APP_PER_MINUTE": "0", "GENAI_APP_PER_DAY": "0",
                                        "GENAI_APP_DAILY_REQUESTS": "0", "GENAI_APP_DAILY_TOKENS": "0",
                                        "GENAI_APP_STATE_DIR": "memory"})
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
            err = stop_app(proc)
    lat_med = [r["median_s"] for r in results if r["median_s"] is not None]
    summary = {"summary": True, "chats_per_round": chats, "rounds": len(results),
               "errors": sum(r["errors"] for r in results), "history_mixups": sum(r["history_mixups"] for r in results),
               "worst_round_median_s": max(lat_med) if lat_med else None,
               "worst_round_p95_s": max((r["p95_s"] for r in results if r["p95_s"]), default=None),
               "server_rss_mb_warm": round(rss0, 1), "server_rss_mb_end": results[-1]["server_rss_mb"],
               "rss_growth_after_round1_mb": round(results[-1]["server_rss_mb"] - results[0]["server_rss_mb"], 1),
               "requests_seen_by_standin": len(server.requests), "wall_s": round(time.monotonic() - t_start, 1),
               "server_log_has_traceback": "Traceback" in err}
    emit(json.dumps(summary))
    return summary


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--mode", choices=["limits", "chats"], default="limits")
    ap.add_argument("--clients", type=int, default=200, help="limits: scripted clients per pass")
    ap.add_argument("--limit", type=int, default=2, help="limits: answers per client per day")
    ap.add_argument("--extra", type=int, default=2, help="limits: questions the over-limit half asks beyond it")
    ap.add_argument("--passes", type=int, default=2, help="limits: passes (memory is compared between them)")
    ap.add_argument("--in-flight", type=int, default=48, help="limits: clients active at once (queue holds 64)")
    ap.add_argument("--max-sessions", type=int, default=None,
                    help="limits: the app's GENAI_APP_MAX_SESSIONS (default: the clients of one pass)")
    ap.add_argument("--chats", type=int, default=50, help="chats: concurrent users (one chat each per round)")
    ap.add_argument("--rounds", type=int, default=3, help="chats: rounds (memory is compared between them)")
    ap.add_argument("--time-limit", type=float, default=900.0, help="seconds for the whole run")
    ap.add_argument("--chunk-delay", type=float, default=0.05, help="stand-in seconds between streamed chunks")
    args = ap.parse_args()
    if args.mode == "limits":
        s = run_limits(args.clients, args.limit, args.extra, args.passes, args.in_flight, args.time_limit,
                       args.chunk_delay, args.max_sessions)
        sys.exit(0 if s["ok"] else 1)
    s = run(args.chats, args.rounds, args.time_limit, args.chunk_delay)
    sys.exit(0 if s["errors"] == 0 else 1)


if __name__ == "__main__":
    main()
