"""Bias probe, watermark and safety filter, in the tiny profile."""

import math

import numpy as np
import pytest
import torch

from genai_lib import responsible as rs
from genai_lib.core import GenAIError

V = 5000


def test_green_list_has_the_right_size_and_depends_on_key_and_context():
    wm = rs.Watermark(key=1, gamma=0.25)
    mask = wm.green_mask(torch.tensor([0, 1, 2, 3]), V)
    assert mask.shape == (4, V)
    assert abs(mask.float().mean().item() - 0.25) < 0.02
    assert not torch.equal(mask[0], mask[1])  # context changes the list
    assert torch.equal(mask, wm.green_mask(torch.tensor([0, 1, 2, 3]), V))  # deterministic
    other = rs.Watermark(key=2, gamma=0.25).green_mask(torch.tensor([0, 1, 2, 3]), V)
    assert (mask != other).float().mean() > 0.2
    prev, tok = torch.tensor([0, 1, 2, 3]), torch.tensor([10, 20, 30, 4999])
    assert torch.equal(wm.is_green(prev, tok), mask[torch.arange(4), tok])


def test_processor_adds_delta_to_green_logits_only():
    wm = rs.Watermark(delta=3.0)
    ids = torch.tensor([[5, 7, 9]])
    scores = torch.zeros(1, V)
    out = wm(ids, scores)
    green = wm.green_mask(torch.tensor([9]), V)
    assert torch.all(out[green] == 3.0) and torch.all(out[~green] == 0.0)


def test_z_score_formula_and_null_distribution():
    wm = rs.Watermark(gamma=0.25)
    rng = np.random.default_rng(0)
    zs = [wm.score(rng.integers(V, size=80).tolist(), V)["z"] for _ in range(300)]
    assert abs(np.mean(zs)) < 0.25 and 0.7 < np.std(zs) < 1.3  # ~ N(0, 1) on unwatermarked text
    assert max(zs) < 4.0  # no false positive at the detection threshold
    s = wm.score([1, 2, 3, 4, 5], V)
    t, g = s["tokens"], s["green"]
    assert t == 4 and s["z"] == pytest.approx((g - 0.25 * t) / math.sqrt(t * 0.25 * 0.75))


def test_watermark_plugs_into_generate(tiny_lm):
    from transformers import LogitsProcessorList

    wm = rs.Watermark(delta=8.0)
    vocab = tiny_lm.model.config.vocab_size
    enc = tiny_lm.tokenizer(["hello"], return_tensors="pt")
    for processors, detected in ((LogitsProcessorList([wm]), True), (LogitsProcessorList(), False)):
        torch.manual_seed(0)
        out = tiny_lm.model.generate(**enc, max_new_tokens=40, do_sample=True, top_k=0, logits_processor=processors,
                                     pad_token_id=tiny_lm.tokenizer.pad_token_id)
        new = out[0, enc["input_ids"].shape[1]:].tolist()
        assert (wm.score(new, vocab)["z"] > 4) is detected
    attacked = rs.substitute_tokens(new, 1.0, vocab, seed=1)
    assert len(attacked) == len(new)


def _pooled_z(wm, texts, tokenizer) -> tuple[float, list[float]]:
    """The z-score of all texts' green counts together, and each text's own z."""
    scores = [wm.detect(t, tokenizer) for t in texts]
    green, n = sum(s["green"] for s in scores), sum(s["tokens"] for s in scores)
    return (green - wm.gamma * n) / math.sqrt(n * wm.gamma * (1 - wm.gamma)), [s["z"] for s in scores]


@pytest.mark.offline
def test_watermarked_text_is_detected_from_text_alone(smol):
    """Four 60-token texts: together they carry overwhelming evidence, each one alone more than chance.

    One 60-token text is weak evidence on its own: with seeds 1-3, in float32 and bfloat16, single
    marked texts scored z from about 2.9 to 7.4, while the four together scored 10.5 to 11.8 and the
    unmarked ones at most 0.04 (measured 2026-12-07), so the thresholds below do not depend on the seed.
    """
    wm = rs.Watermark()
    prompts = ["Describe a walk in a forest.", "Explain how a bicycle works.", "Write a short note to a neighbour.",
               "Tell me about the moon."]
    marked = rs.sample_texts(smol, prompts, max_new_tokens=60, watermark=wm, seed=1)
    plain = rs.sample_texts(smol, prompts, max_new_tokens=60, seed=1)
    z_marked, each = _pooled_z(wm, marked, smol.tokenizer)
    z_plain, _ = _pooled_z(wm, plain, smol.tokenizer)
    assert z_marked > 6 and min(each) > 2, (z_marked, each, marked)
    assert z_plain < 2, (z_plain, plain)


def test_pronoun_preference_and_its_errors(tiny_lm):
    rows = rs.pronoun_preference(tiny_lm, ["nurse", "pilot"], ["The {subject} said"], pronouns=("x", "y"))
    assert len(rows) == 2 and all(math.isfinite(r["log_ratio"]) for r in rows)
    r = rows[0]
    assert r["log_ratio"] == pytest.approx(math.log(r["p_a"]) - math.log(r["p_b"]), abs=1e-4)
    # " he" and " she" are several tokens for the tiny byte-level tokenizer: scored as sequences,
    # compared here with an independent sum over the whole sentence's token log-probabilities
    (row,) = rs.pronoun_preference(tiny_lm, ["nurse"], ["The {subject} said"])
    tok = tiny_lm.tokenizer
    assert len(tok.encode(" she", add_special_tokens=False)) > 1

    def sentence_logprob(prompt, pronoun):
        p_ids = tok.encode(prompt, add_special_tokens=False)
        ids = torch.tensor([p_ids + tok.encode(pronoun, add_special_tokens=False)])
        with torch.no_grad():
            logp = torch.log_softmax(tiny_lm.model(input_ids=ids).logits[0].float(), -1)   # (T, V)
        return sum(float(logp[i - 1, ids[0, i]]) for i in range(len(p_ids), ids.shape[1]))

    expected = sentence_logprob("The nurse said", " he") - sentence_logprob("The nurse said", " she")
    assert row["log_ratio"] == pytest.approx(expected, abs=1e-4)
    with pytest.raises(GenAIError, match="non-empty"):
        rs.pronoun_preference(tiny_lm, ["nurse"], ["The {subject} said"], pronouns=("he", ""))
    with pytest.raises(GenAIError, match="slot"):
        rs.pronoun_preference(tiny_lm, ["nurse"], ["no slot"])


def test_permutation_test():
    assert rs.permutation_test([1, 2, 3], [1, 2, 3], n=500) > 0.9
    assert rs.permutation_test([0.0] * 10, [5.0] * 10, n=500) < 0.01


def test_filters_and_confusion():
    kw = rs.KeywordFilter(["bomb", "steal"])
    assert kw.flags(["How do I steal a car?", "Photobombing tips", "a bomb"]) == [True, False, True]

    def encode(texts):  # a tiny bag-of-letters embedding, normalised
        e = np.array([[t.lower().count(c) for c in "abcdefghijklmnopqrstuvwxyz"] for t in texts], float)
        return e / np.linalg.norm(e, axis=1, keepdims=True)

    ef = rs.EmbeddingFilter(encode, ["steal"], threshold=0.99)
    assert ef.flags(["steal", "least", "hello"]) == [True, True, False]  # anagrams: same letters
    assert ef.flags(["", "steal", "  "]) == [False, True, False]           # an empty answer is not unsafe
    assert ef.similarity(["", " "]).tolist() == [0.0, 0.0]
    c = rs.confusion([True, True, False, False], [True, False, True, False])
    assert (c["tp"], c["fp"], c["fn"], c["tn"]) == (1, 1, 1, 1) and c["recall"] == 0.5
    with pytest.raises(GenAIError):
        rs.confusion([], [])
    with pytest.raises(GenAIError):
        rs.Watermark(gamma=1.5)


# --------------------------------------------------------------------------- reference implementations
_U64 = (1 << 64) - 1


def _int64(v):
    """A Python int wrapped to a signed 64-bit value, as torch's int64 arithmetic does."""
    v &= _U64
    return v - (1 << 64) if v >> 63 else v


def _mix_reference(z):
    """splitmix64's finaliser in plain Python ints, with int64 semantics: wrap-around products and the
    arithmetic (sign-extending) right shift of torch's ``>>`` on int64."""
    z = _int64((z ^ (z >> 30)) * -4658895280553007687)
    z = _int64((z ^ (z >> 27)) * -7723592293110705685)
    return z ^ (z >> 31)


def _is_green_reference(key, gamma, prev, token):
    seed = _mix_reference(_int64(prev * 0x9E3779B1 + key))
    h = _mix_reference(seed ^ _int64(token * 0x85EBCA6B))
    return (h & 0xFFFF) < int(gamma * 0x10000)


def test_mix_and_green_list_match_a_plain_python_reference():
    zs = [0, 1, 2, 12345, -1, -987654321, 2**62 + 17, -(2**63)]
    assert rs._mix(torch.tensor(zs)).tolist() == [_mix_reference(z) for z in zs]
    wm = rs.Watermark(key=7, gamma=0.3)
    prev = torch.tensor([0, 1, 99, 4999, 123]).repeat_interleave(40)
    tok = torch.arange(200) * 25
    expected = [_is_green_reference(7, 0.3, p, t) for p, t in zip(prev.tolist(), tok.tolist())]
    assert wm.is_green(prev, tok).tolist() == expected
    assert 0 < sum(expected) < len(expected)


def _low_hash_bits(wm, prev, n):
    """Token ids 0..n-1 and the low 16 bits of their hash after ``prev``, computed as the watermark does."""
    seed = rs._mix(prev * 0x9E3779B1 + wm.key)
    tokens = torch.arange(n)
    return tokens, rs._mix(seed ^ (tokens * 0x85EBCA6B)) & 0xFFFF


def test_a_hash_exactly_at_the_threshold_is_not_green():
    """Green means the low 16 bits of the hash are below gamma * 2^16: exactly gamma of the hash values."""
    wm = rs.Watermark(key=3, gamma=0.25)
    prev = torch.tensor([11])
    tokens, low = _low_hash_bits(wm, prev, 400_000)
    at = tokens[low == 0x4000][:1]
    below, above = tokens[low == 0x3FFF][:1], tokens[low == 0x4001][:1]
    assert len(at) and len(below) and len(above)
    assert wm.is_green(prev, torch.cat([below, at, above])).tolist() == [True, False, False]


def test_score_counts_distinct_pairs_uses_prev_and_matches_the_normal_tail():
    from scipy.stats import norm

    wm = rs.Watermark(key=5, gamma=0.25)
    ids = [3, 8, 3, 8, 3, 8, 1]               # pairs (3,8), (8,3), (3,8), (8,3), (3,8), (8,1): three distinct
    s = wm.score(ids, V)
    green = int(wm.is_green(torch.tensor([3, 8, 8]), torch.tensor([8, 3, 1])).sum())
    assert (s["tokens"], s["green"]) == (3, green)
    assert s["z"] == pytest.approx((green - 0.75) / math.sqrt(3 * 0.25 * 0.75))
    assert s["p"] == pytest.approx(norm.sf(s["z"]), rel=1e-12)
    with_prev = wm.score([8, 1], V, prev=3)    # (3, 8) and (8, 1)
    assert with_prev["tokens"] == 2
    assert with_prev["green"] == int(wm.is_green(torch.tensor([3, 8]), torch.tensor([8, 1])).sum())
    assert wm.score([4], V, prev=0)["tokens"] == 1
    assert wm.score([V - 1, 0], V)["tokens"] == 1            # the last id of the vocabulary is valid
    with pytest.raises(GenAIError, match="vocabulary"):
        wm.score([V, 0], V)
    with pytest.raises(GenAIError, match="two tokens"):
        wm.score([4], V)


def test_watermark_parameter_checks():
    for gamma in (0.0, 1.0, -0.1):
        with pytest.raises(GenAIError, match="gamma"):
            rs.Watermark(gamma=gamma)
    with pytest.raises(GenAIError, match="delta"):
        rs.Watermark(delta=-0.5)
    assert rs.Watermark(gamma=0.01, delta=0.0).delta == 0.0     # no bonus: allowed (an unwatermarked baseline)


def test_detect_scores_the_tokenised_text(tiny_lm):
    wm = rs.Watermark()
    tok = tiny_lm.tokenizer
    text = "the quick brown fox jumps over the lazy dog"
    assert wm.detect(text, tok) == wm.score(tok.encode(text, add_special_tokens=False), len(tok))


def test_sample_texts_asks_for_pure_sampling_with_the_watermark():
    class Chat:
        def chat_batch(self, prompts, **kw):
            self.prompts, self.kw = prompts, kw
            return ["a"] * len(prompts)

    wm, lm = rs.Watermark(), Chat()
    assert rs.sample_texts(lm, ("p", "q"), 9, wm, seed=4, temperature=0.7) == ["a", "a"]
    assert lm.prompts == ["p", "q"]
    assert lm.kw == {"max_new_tokens": 9, "do_sample": True, "temperature": 0.7, "top_k": 0, "top_p": 1.0,
                     "seed": 4, "logits_processor": [wm]}
    rs.sample_texts(lm, ["p"], 3)
    assert lm.kw["logits_processor"] is None and lm.kw["seed"] == 0 and lm.kw["temperature"] == 1.0


def test_substitute_tokens_replaces_exactly_the_requested_share():
    ids = [-1] * 40                               # not a valid id: every replaced position shows
    for fraction, changed in ((0.0, 0), (0.25, 10), (0.5, 20), (1.0, 40)):
        out = rs.substitute_tokens(ids, fraction, vocab_size=7, seed=2)
        assert sum(o != -1 for o in out) == changed
        assert all(0 <= o < 7 for o in out if o != -1)
    assert rs.substitute_tokens(ids, 0.5, 7) == rs.substitute_tokens(ids, 0.5, 7, seed=0)
    assert rs.substitute_tokens(ids, 0.5, 7, seed=1) != rs.substitute_tokens(ids, 0.5, 7, seed=2)
    for bad in (-0.1, 1.1):
        with pytest.raises(GenAIError, match="fraction"):
            rs.substitute_tokens(ids, bad, 7)


def test_permutation_test_matches_the_exact_permutation_p_value():
    """x = (1, 2, 3), y = (4, 5, 6, 7): of the C(7, 3) = 35 relabellings, those with a mean difference at
    least as large as the observed one are enumerated exactly and compared with the Monte-Carlo value."""
    import itertools

    x, y = [1.0, 2.0, 3.0], [4.0, 5.0, 6.0, 7.0]
    pooled = x + y
    observed = abs(np.mean(x) - np.mean(y))
    splits = list(itertools.combinations(range(7), 3))
    extreme = sum(abs(np.mean([pooled[i] for i in s]) - np.mean([pooled[i] for i in range(7) if i not in s]))
                  >= observed - 1e-12 for s in splits)
    exact = extreme / len(splits)
    assert 0 < exact < 0.2
    assert rs.permutation_test(x, y, n=20_000, seed=1) == pytest.approx(exact, abs=0.01)
    # (hits + 1) / (n + 1): never 0, and exactly 1 when every relabelling is as extreme (equal samples)
    assert round(rs.permutation_test(x, y, n=4, seed=3) * 5, 9) in {1, 2, 3, 4, 5}
    assert rs.permutation_test([1, 2, 3], [3, 1, 2], n=200) == 1.0
    # seeded: the same seed gives the same Monte-Carlo estimate, other seeds vary around it
    estimates = [rs.permutation_test(x, y, n=200, seed=s) for s in range(3)]
    assert len(set(estimates)) > 1 and estimates == [rs.permutation_test(x, y, n=200, seed=s) for s in range(3)]


def test_pronoun_preference_rows_match_unbatched_sentence_log_probabilities(tiny_lm):
    """Subjects of different token lengths are batched with left padding; every row equals the model's
    log-probabilities of the pronoun after the unpadded prompt, for every template."""
    tok = tiny_lm.tokenizer

    def logprob(prompt, pronoun):
        p_ids = tok.encode(prompt, add_special_tokens=False)
        ids = torch.tensor([p_ids + tok.encode(pronoun, add_special_tokens=False)])
        with torch.no_grad():
            logp = torch.log_softmax(tiny_lm.model(input_ids=ids).logits[0].float(), -1)
        return sum(float(logp[i - 1, ids[0, i]]) for i in range(len(p_ids), ids.shape[1]))

    side = tok.padding_side
    subjects, templates = ["nurse", "airline pilot of note"], ["The {subject} said", "A {subject} thinks that"]
    rows = rs.pronoun_preference(tiny_lm, subjects, templates, pronouns=(" he", " they"))
    assert tok.padding_side == side                                   # the tokenizer is left as it was
    assert [(r["subject"], r["template"]) for r in rows] == [(s, t) for t in templates for s in subjects]
    for r in rows:
        prompt = r["template"].format(subject=r["subject"])
        la, lb = logprob(prompt, " he"), logprob(prompt, " they")
        assert r["p_a"] == pytest.approx(math.exp(la), rel=1e-3)
        assert r["p_b"] == pytest.approx(math.exp(lb), rel=1e-3)
        assert r["log_ratio"] == pytest.approx(la - lb, abs=1e-3)
    with pytest.raises(GenAIError, match="subject"):
        rs.pronoun_preference(tiny_lm, [], templates)
    with pytest.raises(GenAIError, match="subject"):
        rs.pronoun_preference(tiny_lm, subjects, [])
    with pytest.raises(GenAIError, match="two"):
        rs.pronoun_preference(tiny_lm, subjects, templates, pronouns=(" he", " she", " they"))


def test_keyword_filter_is_case_insensitive_whole_words_and_needs_patterns():
    kw = rs.KeywordFilter(["bomb|explosive", "steal"])
    assert kw.flags(["BOMB threat", "Explosive stuff", "stealth mode", "Steal it", ""]) == [
        True, True, False, True, False]
    with pytest.raises(GenAIError, match="pattern"):
        rs.KeywordFilter([])


def test_embedding_filter_takes_the_closest_unsafe_example_and_flags_at_the_threshold():
    bank = {"u1": [1.0, 0.0, 0.0], "u2": [0.0, 1.0, 0.0], "a": [0.6, 0.8, 0.0], "b": [0.0, 0.6, 0.8],
            "c": [0.0, 0.0, 1.0]}
    ef = rs.EmbeddingFilter(lambda texts: np.array([bank[t] for t in texts]), ["u1", "u2"], threshold=0.8)
    assert ef.similarity(["a", "b", "c", ""]) == pytest.approx([0.8, 0.6, 0.0, 0.0])
    assert ef.flags(["a", "b", "c"]) == [True, False, False]          # a similarity equal to the threshold flags
    assert rs.EmbeddingFilter(lambda t: np.array([bank[x] for x in t]), ["u1"]).flags(["a", "b"]) == [True, False]
    with pytest.raises(GenAIError, match="unsafe example"):
        rs.EmbeddingFilter(lambda t: np.zeros((0, 3)), [])


def test_confusion_counts_and_rates():
    flags = [True, True, True, False, False, False, True, True]
    unsafe = [True, True, False, True, False, False, False, True]
    c = rs.confusion(flags, unsafe)
    assert (c["tp"], c["fp"], c["fn"], c["tn"]) == (3, 2, 1, 2)
    assert c["recall"] == pytest.approx(3 / 4) and c["precision"] == pytest.approx(3 / 5)
    assert c["false_positive_rate"] == pytest.approx(2 / 4)
    one = rs.confusion([True, True], [True, False])                     # denominators of exactly 1
    assert (one["recall"], one["precision"], one["false_positive_rate"]) == (1.0, 0.5, 1.0)
    assert rs.confusion([True, False], [True, False])["precision"] == 1.0
    none = rs.confusion([False, False], [False, False])                 # nothing unsafe, nothing flagged
    assert none["recall"] == 0.0 and none["precision"] == 0.0 and none["false_positive_rate"] == 0.0
    with pytest.raises(GenAIError, match="same length"):
        rs.confusion([True], [True, False])


def test_permutation_test_defaults_to_10000_relabellings_with_seed_0():
    x, y = [1.0, 2.0, 3.0], [4.0, 5.0, 6.0, 7.0]
    default = rs.permutation_test(x, y)
    assert default == rs.permutation_test(x, y, n=10_000, seed=0)
    # these data tell the defaults apart: another n or another seed gives another value
    assert default not in (rs.permutation_test(x, y, n=10_001, seed=0), rs.permutation_test(x, y, n=10_000, seed=1))


def test_gamma_0_9_threshold_is_int_of_gamma_times_2_to_the_16():
    """int(0.9 * 65536) = 58982: a hash whose low 16 bits are 58982 is red, 58981 is green."""
    wm = rs.Watermark(key=3, gamma=0.9)
    prev = torch.tensor([11])
    tokens, low = _low_hash_bits(wm, prev, 1_000_000)
    at, below = tokens[low == 58982][:1], tokens[low == 58981][:1]
    assert len(at) and len(below)
    assert wm.is_green(prev, torch.cat([below, at])).tolist() == [True, False]


def test_processor_keeps_the_dtype_of_half_precision_logits():
    wm = rs.Watermark(delta=2.0)
    ids = torch.tensor([[5, 7, 9], [1, 2, 3]])
    scores = torch.randn(2, V, generator=torch.Generator().manual_seed(0)).to(torch.bfloat16)
    out = wm(ids, scores)
    assert out.dtype == torch.bfloat16
    mask = wm.green_mask(torch.tensor([9, 3]), V)
    assert torch.equal(out, scores + torch.where(mask, torch.tensor(2.0, dtype=torch.bfloat16),
                                                 torch.tensor(0.0, dtype=torch.bfloat16)))


def test_detect_ignores_the_tokenizers_special_tokens():
    from transformers import DistilBertTokenizer

    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *"the quick brown fox jumps over lazy dog".split()]
    tok = DistilBertTokenizer(vocab={w: i for i, w in enumerate(vocab)})   # adds [CLS] ... [SEP] by default
    text = "the quick brown fox jumps over the lazy dog"
    bare = tok.encode(text, add_special_tokens=False)
    assert tok.encode(text) == [2, *bare, 3]
    wm = rs.Watermark(gamma=0.5)
    got = wm.detect(text, tok)
    assert len(set(bare)) == 8 and 1 not in bare                        # one token per word, none unknown
    assert got == wm.score(bare, len(tok)) and got["tokens"] == 8        # the 8 distinct pairs of the words
