"""Property-based tests (hypothesis) where a property is the natural statement of correctness.

Each test states a law the book's numbers rest on and lets hypothesis search for a counter-example:
pass@k, the Fréchet distance, SQuAD's EM/F1, the diffusion forward process and its inversion, and
the watermark's null distribution. The seeds of hypothesis are derandomised (see ``settings`` below)
so a run is reproducible: a failure found once is found again.
"""

from __future__ import annotations

import math
import string

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from scipy import linalg

from genai_lib import codegen, metrics, qa, responsible
from genai_lib.core import GenAIError
from genai_lib.diffusion import NoiseScheduler

PROPS = settings(max_examples=150, derandomize=True, deadline=None,
                 suppress_health_check=[HealthCheck.too_slow])


# ----------------------------------------------------------------------------- pass@k
@st.composite
def nck(draw, max_n: int = 60):
    n = draw(st.integers(1, max_n))
    c = draw(st.integers(0, n))
    k = draw(st.integers(1, n))
    return n, c, k


@PROPS
@given(nck())
def test_pass_at_k_is_one_minus_a_ratio_of_binomials(args):
    n, c, k = args
    expected = 1.0 - math.comb(n - c, k) / math.comb(n, k)
    assert codegen.pass_at_k(n, c, k) == pytest.approx(expected, abs=1e-12)
    assert 0.0 <= codegen.pass_at_k(n, c, k) <= 1.0


@PROPS
@given(nck())
def test_pass_at_k_is_monotone_in_k_and_in_c(args):
    n, c, k = args
    p = codegen.pass_at_k(n, c, k)
    if k < n:
        assert codegen.pass_at_k(n, c, k + 1) >= p - 1e-12
    if c < n:
        assert codegen.pass_at_k(n, c + 1, k) >= p - 1e-12
    assert codegen.pass_at_k(n, 0, k) == 0.0
    assert codegen.pass_at_k(n, n, k) == 1.0
    assert codegen.pass_at_k(n, c, 1) == pytest.approx(c / n, abs=1e-12)  # pass@1 is the pass rate


@PROPS
@given(st.integers(-3, 3), st.integers(-3, 3), st.integers(-3, 3))
def test_pass_at_k_rejects_impossible_counts(n, c, k):
    assume(not (0 <= c <= n and 1 <= k <= n))
    with pytest.raises(GenAIError):
        codegen.pass_at_k(n, c, k)


# ----------------------------------------------------------------------------- Fréchet distance
@st.composite
def gaussians(draw, max_d: int = 6):
    """Two random Gaussians (mean, covariance) of the same dimension, covariances PSD."""
    d = draw(st.integers(1, max_d))
    seed = draw(st.integers(0, 2**31 - 1))
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(2):
        mu = rng.normal(size=d) * draw(st.floats(0.0, 5.0))
        a = rng.normal(size=(d, d))
        out += [mu, a @ a.T + 0.1 * np.eye(d)]
    return out


def scipy_frechet(mu1, s1, mu2, s2) -> float:
    """The reference: the definition, with scipy's matrix square root of s1^½ s2 s1^½ (symmetric)."""
    r1 = linalg.sqrtm(s1).real
    cross = linalg.sqrtm(r1 @ s2 @ r1).real
    return float(np.sum((mu1 - mu2) ** 2) + np.trace(s1) + np.trace(s2) - 2 * np.trace(cross))


@PROPS
@given(gaussians())
def test_frechet_distance_matches_scipy_is_symmetric_and_non_negative(g):
    mu1, s1, mu2, s2 = g
    d12 = metrics.frechet_distance(mu1, s1, mu2, s2)
    d21 = metrics.frechet_distance(mu2, s2, mu1, s1)
    ref = scipy_frechet(mu1, s1, mu2, s2)
    assert d12 >= 0.0
    assert d12 == pytest.approx(ref, rel=1e-6, abs=1e-6)
    assert d12 == pytest.approx(d21, rel=1e-6, abs=1e-6)


@PROPS
@given(gaussians())
def test_frechet_distance_is_zero_on_identical_sets_and_sees_a_mean_shift(g):
    mu1, s1, _, _ = g
    assert metrics.frechet_distance(mu1, s1, mu1, s1) == pytest.approx(0.0, abs=1e-6)
    shift = np.ones_like(mu1)
    # same covariance, means apart by a vector of ones: d² = |shift|² = D exactly
    assert metrics.frechet_distance(mu1, s1, mu1 + shift, s1) == pytest.approx(mu1.size, rel=1e-5)


def test_frechet_distance_of_one_dimensional_gaussians_has_a_closed_form():
    # d² = (m1 - m2)² + (s1 - s2)² for N(m1, s1²) and N(m2, s2²)
    assert metrics.frechet_distance([1.0], [[4.0]], [3.0], [[9.0]]) == pytest.approx(4.0 + 1.0)


# ----------------------------------------------------------------------------- SQuAD EM / F1
words = st.lists(st.text(alphabet=string.ascii_letters, min_size=1, max_size=8), min_size=1, max_size=6)


def noisy(draw, tokens: list[str]) -> str:
    """The same answer with other case, punctuation and articles sprinkled in."""
    out = []
    for w in tokens:
        if draw(st.booleans()):
            out.append(draw(st.sampled_from(["a", "an", "the", "The", "A"])))
        w = w.upper() if draw(st.booleans()) else w.lower()
        out.append(w + draw(st.sampled_from(["", ".", ",", "!", "?", "'", '"', ";"])))
    return draw(st.sampled_from([" ", "  ", "\t"])).join(out)


@PROPS
@given(words, st.data())
def test_em_and_f1_ignore_articles_case_and_punctuation(tokens, data):
    tokens = [t for t in tokens if t.lower() not in ("a", "an", "the")]
    assume(tokens)
    answer = " ".join(tokens)
    prediction = noisy(data.draw, tokens)
    assert qa.exact_match(prediction, [answer]) == 1.0
    assert qa.f1(prediction, [answer]) == pytest.approx(1.0)


@PROPS
@given(words, words)
def test_f1_is_symmetric_bounded_and_at_least_em(a, b):
    pa, pb = " ".join(a), " ".join(b)
    f_ab, f_ba = qa.f1(pa, [pb]), qa.f1(pb, [pa])
    assert f_ab == pytest.approx(f_ba)
    assert 0.0 <= f_ab <= 1.0
    assert f_ab >= qa.exact_match(pa, [pb])


def test_f1_counts_overlapping_tokens():
    # prediction "red big car", answer "the big red bus": 2 common tokens; P = 2/3, R = 2/3
    assert qa.f1("red big car", ["the big red bus"]) == pytest.approx(2 / 3)
    assert qa.f1("red red red", ["red"]) == pytest.approx(2 * (1 / 3) * 1 / (1 / 3 + 1))


# ----------------------------------------------------------------------------- diffusion
@PROPS
@given(st.integers(0, 999), st.sampled_from(["epsilon", "v_prediction"]),
       st.sampled_from(["linear", "squaredcos_cap_v2"]), st.integers(0, 2**31 - 1))
def test_add_noise_then_the_model_free_inversion_recovers_x0(t, prediction_type, schedule, seed):
    sched = NoiseScheduler(1000, schedule, prediction_type)
    g = torch.Generator().manual_seed(seed)
    x0 = torch.rand(2, 1, 8, 8, generator=g, dtype=torch.float64) * 2 - 1
    noise = torch.randn(2, 1, 8, 8, generator=g, dtype=torch.float64)
    sched.alphas_cumprod = sched.alphas_cumprod.double()
    tt = torch.tensor([t, t])
    xt = sched.add_noise(x0, noise, tt)
    # the model the network should become: it outputs exactly its training target
    perfect = sched.target(x0, noise, tt)
    x0_hat, eps_hat = sched.split(perfect, t, xt)
    a = float(sched.alphas_cumprod[t])
    # the inversion divides by √ᾱ_t (ε) or by √(1 − ᾱ_t) (ε from x0): allow for that conditioning
    tol = 1e-9 / min(math.sqrt(a), math.sqrt(1 - a))
    assert torch.allclose(x0_hat, x0, atol=tol)
    assert torch.allclose(eps_hat, noise, atol=tol)
    # and the variance of x_t stays 1 for unit-variance data: ᾱ + (1 − ᾱ) = 1
    assert a + (1 - a) == pytest.approx(1.0)


@PROPS
@given(st.integers(1, 999))
def test_noise_schedule_is_monotone_and_bounded(t):
    for schedule in ("linear", "squaredcos_cap_v2"):
        ab = NoiseScheduler(1000, schedule).alphas_cumprod
        assert 0.0 < float(ab[t]) < float(ab[t - 1]) <= 1.0


# ----------------------------------------------------------------------------- watermark
def test_watermark_z_score_of_unwatermarked_tokens_is_standard_normal():
    """Over many random sequences without the watermark, z ~ N(0, 1): mean ≈ 0, sd ≈ 1, few false alarms."""
    wm = responsible.Watermark()
    rng = np.random.default_rng(0)
    zs = np.array([wm.score(rng.integers(0, 32000, size=200).tolist(), 32000)["z"] for _ in range(400)])
    # standard errors: mean 1/√400 = 0.05, sd ≈ 0.035; bounds at about four standard errors
    assert abs(zs.mean()) < 0.2
    assert abs(zs.std() - 1.0) < 0.15
    assert (zs > 4.0).mean() < 0.01          # the chapter's detection threshold rarely fires by chance


@PROPS
@given(st.integers(0, 2**31 - 1), st.floats(0.1, 0.9))
def test_watermark_green_fraction_matches_gamma(key, gamma):
    wm = responsible.Watermark(key=key, gamma=gamma)
    prev = torch.arange(64)
    frac = wm.green_mask(prev, 4096).float().mean().item()
    # 262,144 hashed pairs: the fraction is within a few standard errors (≤ 0.001) of gamma
    assert frac == pytest.approx(int(gamma * 0x10000) / 0x10000, abs=0.006)


@PROPS
@given(st.lists(st.integers(0, 999), min_size=2, max_size=60))
def test_watermark_score_counts_each_pair_once(ids):
    wm = responsible.Watermark()
    once = wm.score(ids, 1000)
    twice = wm.score(ids + ids, 1000)
    pairs = {(ids[i - 1], ids[i]) for i in range(1, len(ids))}
    assert once["tokens"] == len(pairs)
    # repeating the text adds at most one new pair (the seam between the copies)
    assert twice["tokens"] - once["tokens"] in (0, 1)
    assert 0 <= once["green"] <= once["tokens"]
