"""Every piece the fast runtime replays as a CUDA graph is capturable: inside a piece, the project's
code builds no tensor from host data and reads nothing back to the host.

CUDA-graph capture refuses a copy from pageable host memory and any host synchronisation; on the
H200 (2026-12-02) the target piece fell back to eager for a ``new_tensor(range(size))``
(results/h200/bench_decode_before_capture_fix/bench_decode_qwen_b1.json, ``graph_capture_failures``). There is no CUDA here, so
this test runs the pieces eagerly on the CPU under a torch function mode that raises on such calls
made from ``empirical/`` (torch's and transformers' own internals are not judged here: the draft
piece, the same model code, captured on the H200)."""

import sys
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from torch.overrides import TorchFunctionMode  # noqa: E402

import empirical.graphs as graphs  # noqa: E402
from empirical.fast_decoder import decode_batch_fast  # noqa: E402
from test_empirical_batch_decoder import PROMPTS, _rngs, pair  # noqa: E402,F401 (prompts, Generators, fixture)

pytestmark = pytest.mark.hf
OURS = (str(Path(graphs.__file__).resolve().parent), str(Path(__file__).resolve()))  # the project, this control
#: calls that copy host data to the device or synchronise with the host
HOST = {torch.tensor, torch.from_numpy, torch.Tensor.new_tensor, torch.Tensor.item, torch.Tensor.tolist,
        torch.Tensor.cpu, torch.Tensor.numpy}


def _caller_is_ours() -> bool:
    frame = sys._getframe(2)
    while frame is not None and "/torch/" in frame.f_code.co_filename.replace("\\", "/"):
        frame = frame.f_back
    return frame is not None and frame.f_code.co_filename.startswith(OURS)


class HostDataGuard(TorchFunctionMode):
    """Raise on a host copy or synchronisation made by the project's code while a piece runs."""

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        from_host = func is torch.as_tensor and args and not isinstance(args[0], torch.Tensor)
        if (func in HOST or from_host) and _caller_is_ours():
            raise AssertionError(f"{getattr(func, '__qualname__', func)} inside a captured piece")
        return func(*args, **kwargs)


@pytest.fixture
def guarded(monkeypatch):
    """Graphed pieces run eagerly under :class:`HostDataGuard`."""
    def call(self):
        with HostDataGuard():
            self.fn()

    monkeypatch.setattr(graphs.Graphed, "__call__", call)


@pytest.mark.parametrize("tree, method", [(None, "ar"), ("2^3", "spechub"), ("3^2", "rrs_wor"), ("chain-3", "single"),
                                          ("2,1,2", "rrs"), ("2^3", "traversal"), ("chain-3", "block")])
def test_pieces_build_no_tensor_from_host_data(pair, guarded, tree, method):
    out = decode_batch_fast(pair, PROMPTS, tree=tree, method=method, rngs=_rngs(3), max_new_tokens=12, graphs=False)
    assert all(r.tokens for r in out)


def test_the_guard_catches_a_host_copy(pair, guarded, monkeypatch):
    """Negative control: the bug found on the H200, put back, is caught."""
    import empirical.fast_workspace as fw

    original = fw.Workspace._target

    def target_with_host_copy(self):
        self.tree_columns = self.depths.new_tensor(range(self.tree.size))
        original(self)

    monkeypatch.setattr(fw.Workspace, "_target", target_with_host_copy)
    fw.clear_workspaces()
    with pytest.raises(AssertionError, match="new_tensor"):
        decode_batch_fast(pair, PROMPTS, tree="2^2", method="rrs", rngs=_rngs(3), max_new_tokens=4, graphs=False)
    fw.clear_workspaces()
