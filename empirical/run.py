"""A measured decoding run: prompts x trees x methods, JSONL records as it goes, then a summary JSON.

Convention: p = target, q = draft; tokens per step = accepted drafts + 1. Every prompt gets a numpy
Generator seeded by (seed, prompt index), shared by all trees and methods (common random numbers).
Output folder: ``config.json`` (the settings; a rerun must match), ``records.jsonl``, ``summary.json``.
"""

from __future__ import annotations

import json
import sys
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np

from spechub_theory.methods import METHOD_NAMES
from spechub_theory.trees.sequence_rules import SEQUENCE_METHODS, check_tree_for
from spechub_theory.trees.shapes import Tree
from spechub_theory.verification import check_method_k

from .compile_choice import check_compile_choice, compiling
from .decode_types import AR, Sampling
from .engines import get_engine
from .fast_decoder import RUNTIMES, decode_batch_with
from .fast_workspace import forward_backend, verify_backend
from .metadata import run_metadata
from .node_rates import node_rates
from .progress import progress_bar
from .prompts import encode_prompt, load_prompts
from .records import RecordLog, record_key
from .summary import PHASES, summarize
from .vocab import NonFiniteLogitsError

__all__ = ["DecodeConfig", "run_decode", "DECODE_METHODS", "AR_TREE"]

#: methods ``spechub decode`` can run: every verification method, plus plain sampling ``ar``
DECODE_METHODS = tuple(METHOD_NAMES) + tuple(SEQUENCE_METHODS) + (AR,)
#: the tree label of ``ar`` records (it uses no draft tree)
AR_TREE = "none"
#: settings that must match between an interrupted run and its resumption
_RESUME_KEYS = ("target", "draft", "temperature", "top_p", "prompts", "max_new_tokens", "seed", "dtype", "node_methods")


@dataclass(frozen=True)
class DecodeConfig:
    """Settings of a decoding run (the CLI reads its defaults from here).

    Defaults: SmolLM2-135M-Instruct as target with its first 4 layers as a weight-sharing draft
    (always available, though a weak draft: use ``smollm2-draft`` for the distilled one), a
    depth-3 binary tree, SpecHub against both RRS variants, T = 1, 20 built-in prompts, 128 new
    tokens. ``compile``: which fast-path pieces go through ``torch.compile``
    (:data:`empirical.compile_choice.COMPILE_CHOICES`; None: as the environment says).
    """

    target: str = "smollm2"
    draft: str = "smollm2-layers:4"
    trees: tuple = ("2^4",)
    methods: tuple = ("spechub", "rrs", "rrs_wor")
    temperature: float = 1.0
    top_p: float = 1.0
    prompts: str = "builtin"
    num_prompts: int = 20
    max_new_tokens: int = 128
    seed: int = 0
    device: str = "cpu"
    dtype: str = "auto"
    node_methods: tuple | None = None
    engine: str = "auto"
    batch_size: int = 1
    runtime: str = "fast"
    compile: str | None = None

    def validated(self) -> "DecodeConfig":
        """A copy with trees/methods checked and normalised; raises ValueError on bad settings.

        Returns
        -------
        DecodeConfig

        Raises
        ------
        ValueError
            On bad input (the message names the rule): ``methods`` ... is not one of; or ``trees``
            must name at least one tree (e.g. 2^4); or ``num_prompts``, ``max_new_tokens`` and
            ``batch_size`` must be >= 1.
        """
        methods = tuple(m.strip() for m in self.methods if m.strip())
        bad = [m for m in methods if m not in DECODE_METHODS]
        if bad or not methods:
            raise ValueError(f"`methods` {bad[0] if bad else ''!r} is not one of {', '.join(map(repr, DECODE_METHODS))}.")
        trees = tuple(t.strip() for t in self.trees if t.strip())
        if not trees and any(m != AR for m in methods):
            raise ValueError("`trees` must name at least one tree (e.g. 2^4).")
        for name in trees:
            tree = Tree.from_name(name)
            for method in methods:
                if method in SEQUENCE_METHODS:  # sequence-level: block needs a chain
                    try:
                        check_tree_for(SEQUENCE_METHODS[method], tree)
                    except ValueError as exc:
                        raise ValueError(f"tree {name!r} with method {method!r}: {exc}") from None
                elif method != AR:
                    for k in {len(c) for c in tree.children if c}:
                        try:
                            check_method_k(method, k)
                        except ValueError as exc:
                            raise ValueError(f"tree {name!r} with method {method!r}: {exc}") from None
        if int(self.num_prompts) < 1 or int(self.max_new_tokens) < 1 or int(self.batch_size) < 1:
            raise ValueError("`num_prompts`, `max_new_tokens` and `batch_size` must be >= 1.")
        Sampling(self.temperature, self.top_p)  # validates
        if self.runtime not in RUNTIMES:
            raise ValueError(f"`runtime` {self.runtime!r} is not one of {', '.join(map(repr, RUNTIMES))}.")
        check_compile_choice(self.compile)
        for method in methods:
            if method != AR:  # ar has no verification: any engine walks its root-only tree
                get_engine(self.engine, method)
        return replace(self, trees=trees, methods=methods)


def run_decode(config: DecodeConfig, out_dir, *, pair=None, argv=None, progress: bool = True) -> dict:
    """Decode every prompt with every tree and method, record each, and write the summary.

    Parameters
    ----------
    config : DecodeConfig
    out_dir : str or Path
        Folder for ``config.json``, ``records.jsonl`` and ``summary.json``; an existing run there
        with the same settings is resumed (finished prompts are skipped).
    pair : empirical.models.ModelPair, optional
        Already loaded models (otherwise :func:`empirical.models.load_pair` from the config).
    argv : list of str, optional
        Command line recorded in the metadata.
    progress : bool
        Progress bar on stderr.

    Returns
    -------
    dict, the summary (also written to ``summary.json``).

    Raises
    ------
    ValueError
        Bad settings, or ``out_dir`` holding a run with different settings.
    """
    config = config.validated()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    _check_resume(out / "config.json", config)
    if pair is None:
        from .models import load_pair

        pair = load_pair(config.target, config.draft, device=config.device, dtype=config.dtype)
    prompts = load_prompts(config.prompts, num_prompts=config.num_prompts)
    log = RecordLog(out / "records.jsonl")
    jobs = [(i, tree, method) for i in range(len(prompts))
            for tree, method in _tree_methods(config)
            if record_key(tree, method, i) not in log.done()]
    sampling = Sampling(config.temperature, config.top_p)
    with compiling(config.compile), progress_bar(total=len(jobs), enabled=progress, desc="decode") as bar:
        compiled = {"verify": verify_backend(), "forwards": forward_backend()}  # the fast path's, as run
        for tree, method, indices in _batches(jobs, config.batch_size):
            ids = [encode_prompt(pair.tokenizer, prompts[i]) for i in indices]
            for record in _decode_records(pair, [prompts[i] for i in indices], indices, ids, tree, method, sampling, config):
                log.append(record)
            bar.update(len(indices))
    summary = {
        "meta": run_metadata(config=json.loads(json.dumps(asdict(config))), models=dict(pair.names),
                             argv=argv if argv is not None else sys.argv, device=pair.device, dtype=pair.dtype,
                             seed=config.seed),
        **summarize(log.records, seed=config.seed),
    }
    summary["meta"]["compiled"] = compiled  # torch.compile backends of the fast path's pieces (None: not compiled)
    if getattr(pair, "vocab", None) is not None:  # shared vocabulary and the mass cut from each law
        summary["vocab"] = pair.vocab.to_dict()
    (out / "summary.json").write_text(json.dumps(summary, indent=1, allow_nan=False) + "\n", encoding="utf-8")
    return summary


def _tree_methods(config: DecodeConfig):
    """(tree label, method) pairs of the run; ``ar`` once, under :data:`AR_TREE`."""
    pairs = [(AR_TREE, AR)] if AR in config.methods else []
    return pairs + [(t, m) for t in config.trees for m in config.methods if m != AR]


def _batches(jobs, batch_size: int):
    """(tree, method, prompt indices) groups of at most ``batch_size`` jobs sharing tree and method,
    in job order."""
    groups: dict = {}
    for i, tree, method in jobs:
        groups.setdefault((tree, method), []).append(i)
    for (tree, method), indices in groups.items():
        for start in range(0, len(indices), batch_size):
            yield tree, method, indices[start:start + batch_size]


def _decode_records(pair, prompts, indices, ids, tree: str, method: str, sampling, config) -> list:
    """Decode prompts together (:func:`empirical.fast_decoder.decode_batch_with`, each with its own
    Generator seeded by (seed, prompt index)) and return their JSON records; node rates are
    computed between steps."""
    steps = [{"emitted": [], "accepted": [], **{f"{ph}_s": [] for ph in PHASES}} for _ in indices]
    nodes = [{"step": [], "node": [], "slot": []} for _ in indices]

    def on_step(r, step, laws):
        s = len(steps[r]["emitted"])
        steps[r]["emitted"].append(len(step.tokens))
        steps[r]["accepted"].append(step.accepted)
        for ph in PHASES:
            steps[r][f"{ph}_s"].append(step.seconds.get(ph, 0.0))
        if step.visited:
            _extend_columns(nodes[r], node_rates(laws.p, laws.q, laws.k, methods=config.node_methods))
            nodes[r]["step"].extend([s] * len(step.visited))
            nodes[r]["node"].extend(step.visited)
            nodes[r]["slot"].extend(step.slots)  # accepted slot at the node, -1 = rejected

    rngs = [np.random.default_rng([config.seed, i]) for i in indices]
    try:
        results = decode_batch_with(pair, ids, tree=tree if method != AR else None, method=method, sampling=sampling,
                                    max_new_tokens=config.max_new_tokens, rngs=rngs, on_step=on_step, engine=config.engine,
                                    runtime=config.runtime)
    except NonFiniteLogitsError as exc:  # records of earlier batches are already in records.jsonl
        raise exc.for_prompt(f"{indices[exc.prompt]} ({prompts[exc.prompt].id!r}, {tree} {method})") from None
    records = []
    for r, (prompt, index, result) in enumerate(zip(prompts, indices, results)):
        if "k" not in nodes[r]:
            _extend_columns(nodes[r], node_rates(np.zeros((0, 1)), np.zeros((0, 1)), [], methods=config.node_methods))
        records.append({
            "key": record_key(tree, method, index),
            "tree": tree,
            "method": method,
            "prompt_index": index,
            "prompt_id": prompt.id,
            "prompt_tokens": len(ids[r]),
            "tokens": list(result.tokens),
            "text": pair.tokenizer.decode(list(result.tokens)),
            "finish": result.finish,
            "prefill_s": result.prefill_s,
            "steps": steps[r],
            "nodes": nodes[r],
        })
    return records


def _extend_columns(cols: dict, new: dict) -> None:
    """Append node-rate columns ``new`` to ``cols`` (nested ``acceptance`` dict included)."""
    for key, values in new.items():
        if key == "acceptance":
            acc = cols.setdefault("acceptance", {})
            for method, column in values.items():
                acc.setdefault(method, []).extend(column)
        else:
            cols.setdefault(key, []).extend(values)


def _check_resume(path: Path, config: DecodeConfig) -> None:
    """Write the settings, or check that an earlier run in the folder used the same ones."""
    current = {k: _jsonable(getattr(config, k)) for k in _RESUME_KEYS}
    if path.exists():
        earlier = json.loads(path.read_text(encoding="utf-8"))
        diff = [k for k in _RESUME_KEYS if earlier.get(k) != current[k]]
        if diff:
            raise ValueError(
                f"{str(path.parent)!r} holds a run with different settings ({', '.join(diff)}); "
                "use another --out folder or the same settings to resume."
            )
    else:
        path.write_text(json.dumps(current, indent=1) + "\n", encoding="utf-8")


def _jsonable(value):
    return list(value) if isinstance(value, tuple) else value

