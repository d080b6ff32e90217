"""The torch mirror of the core (empirical.fast_verify) against the numpy reference: node rules,
draft laws from shared uniforms, and whole decodes giving identical tokens."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from empirical import fast_verify  # noqa: E402
from empirical.decoder import decode  # noqa: E402
from empirical.tiny import one_thread, tiny_pair  # noqa: E402
from spechub_theory.methods import get_method  # noqa: E402

pytestmark = pytest.mark.hf
FAST = sorted(fast_verify.FAST_METHODS)


def _pq(n, seed, concentration=0.3):
    rng = np.random.default_rng(seed)
    p, q = rng.dirichlet(np.full(n, concentration)), rng.dirichlet(np.full(n, concentration))
    q[rng.integers(n)] = 0.0  # a zero-mass token, and an exact tie below
    q[1] = q[2]
    return p, q / q.sum()


@pytest.mark.parametrize("method", FAST)
@pytest.mark.parametrize("k", [1, 2, 3])
def test_rule_matches_the_core(method, k):
    if method == "single" and k > 1:
        pytest.skip("single verifies one draft")
    m = get_method(method)
    for seed in range(6):
        p, q = _pq(12, seed)
        drafts = m.LAW.sample(q, k, rng=seed)
        ref = m.rule(p, q, drafts)
        got = fast_verify.rule(torch.as_tensor(p), torch.as_tensor(q), torch.as_tensor(drafts), method=method)
        np.testing.assert_allclose(got.accept.numpy(), ref.accept, rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(got.residual.numpy(), ref.residual, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("method", FAST)
@pytest.mark.parametrize("k", [1, 2, 3])
def test_rule_over_a_batch_of_nodes_equals_node_by_node(method, k):
    """The rules broadcast over leading axes (the batched tree walk verifies many rows at once)."""
    if method == "single" and k > 1:
        pytest.skip("single verifies one draft")
    m = get_method(method)
    P, Q, D = [], [], []
    for seed in range(5):
        p, q = _pq(9, 10 + seed)
        P.append(p), Q.append(q), D.append(m.LAW.sample(q, k, rng=seed))
    P, Q, D = (torch.as_tensor(np.array(x)) for x in (P, Q, D))
    batch = fast_verify.rule(P, Q, D, method=method)
    for i in range(len(P)):
        one = fast_verify.rule(P[i], Q[i], D[i], method=method)
        torch.testing.assert_close(batch.accept[i], one.accept, rtol=1e-13, atol=1e-15)
        torch.testing.assert_close(batch.residual[i], one.residual, rtol=1e-13, atol=1e-15)


@pytest.mark.parametrize("method", FAST)
@pytest.mark.parametrize("k", [1, 2, 3])
def test_draft_law_matches_the_core_from_the_same_uniforms(method, k):
    law = get_method(method).LAW
    p, q = _pq(10, k)
    rows = np.stack([q, np.roll(q, 3), np.eye(10)[4]])  # includes a one-hot q
    u = np.random.default_rng(k).random((3, k))
    ref = law.sample_from_uniforms(rows, k, u)
    got = fast_verify.sample_drafts(torch.as_tensor(rows), k, torch.as_tensor(u), method=method)
    np.testing.assert_array_equal(got.numpy(), ref)


@pytest.mark.parametrize("method, tree", [("spechub", "2^3"), ("rrs", "3^2"), ("rrs_wor", "2,3,1"), ("single", "chain-3")])
def test_torch_and_numpy_engines_emit_the_same_tokens(method, tree):
    with one_thread():
        pair = tiny_pair(64)
        runs = [decode(pair, [3, 4], tree=tree, method=method, max_new_tokens=25, rng=9, engine=e) for e in ("torch", "numpy")]
    assert runs[0].tokens == runs[1].tokens
    assert [s.visited for s in runs[0].steps] == [s.visited for s in runs[1].steps]


def test_engine_errors():
    from empirical.engines import get_engine

    with pytest.raises(ValueError, match="`engine` 'torch' has no 'kseq'"):
        get_engine("torch", "kseq")
    with pytest.raises(ValueError, match="`engine` 'gpu' is not one of"):
        get_engine("gpu", "rrs")


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("method", ["spechub", "rrs_wor"])
def test_cuda_decode_matches_cpu_numpy_reference(method):
    """On the GPU: tree decoding with the torch engine emits the tokens of the numpy core on CPU."""
    cuda = decode(tiny_pair(64, device="cuda"), [3, 4], tree="2^3", method=method, max_new_tokens=20, rng=5)
    cpu = decode(tiny_pair(64), [3, 4], tree="2^3", method=method, max_new_tokens=20, rng=5, engine="numpy")
    assert cuda.tokens == cpu.tokens


def test_old_argument_order_is_refused_with_the_new_call():
    q = torch.full((1, 4), 0.25, dtype=torch.float64)
    with pytest.raises(TypeError, match=r"sample_drafts\(q, k, u, method='rrs'\)"):
        fast_verify.sample_drafts("rrs", q, 2, torch.zeros(1, 2, dtype=torch.float64))
    with pytest.raises(TypeError, match=r"rule\(p, q, drafts, method='spechub'\)"):
        fast_verify.rule("spechub", q, q, torch.zeros(1, 2, dtype=torch.int64))


def _bits(x):
    return x.contiguous().view(torch.int64)


def test_unmasked_conditional_equals_the_masked_one_bit_for_bit():
    """q(. | V) without a mask (rrs_wor's first slot) is the masked form's value, zero-mass rows included."""
    rng = np.random.default_rng(5)
    q = torch.as_tensor(rng.dirichlet(np.full(37, 0.3), size=6))
    q[2] = 0.0  # no mass: the uniform law, float32 1/n as the masked form computes it
    masked = fast_verify._conditional_on(q, torch.ones_like(q, dtype=torch.bool))
    assert torch.equal(_bits(fast_verify._conditional(q, torch.zeros(6, 0, dtype=torch.long))), _bits(masked))


def test_ratio_reads_zero_denominators_as_accept_iff_mass():
    num = torch.tensor([0.0, 0.3, 0.0, 0.2, 0.9], dtype=torch.float64)
    den = torch.tensor([0.0, 0.0, 0.5, 0.4, 0.3], dtype=torch.float64)
    got = fast_verify._ratio(num, den)
    assert got.dtype == torch.float64 and got.tolist() == [0.0, 1.0, 0.0, 0.5, 1.0]


@pytest.mark.parametrize("k", [1, 2, 4])
def test_slots_are_cond_times_the_survival_of_the_earlier_slots(k):
    cond = torch.as_tensor(np.random.default_rng(k).random((9, k)))
    cond[0] = 1.0
    survive = torch.cumprod(1.0 - cond, -1)
    expected = cond * torch.cat([torch.ones_like(cond[..., :1]), survive[..., :-1]], -1)
    assert torch.equal(_bits(fast_verify._slots(cond)), _bits(expected))
