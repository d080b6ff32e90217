"""The sweep's configuration file (TOML): pair, prompts, temperatures, tree groups, seeds, sizes.

Convention: p = target, q = draft. Every problem of a file is reported, each as one sentence
naming the key, the rule and the value, in one :class:`ConfigError` (a ``ValueError``). Defaults
of the decoding settings are :class:`empirical.run.DecodeConfig`'s; trees are any spelling
``spechub tree`` accepts (``k^d``, ``chain-L``, a branching list ``"2,2,1"``).
"""

from __future__ import annotations

import difflib
import tomllib
from dataclasses import asdict, dataclass, fields
from pathlib import Path

from spechub_theory.trees.cost import check_tree_name

from ..compile_choice import COMPILE_CHOICES
from ..decode_types import AR
from ..fast_decoder import RUNTIMES
from ..run import DECODE_METHODS, DecodeConfig

__all__ = ["ConfigError", "TreeGroup", "SweepConfig", "load_config", "parse_config", "DEFAULT_SHARD_SIZE",
           "RESUME_KEYS"]

#: prompts per job when the file names no ``shard_size``: a batch that fills a GPU with small models
DEFAULT_SHARD_SIZE = 25
#: settings that change the tokens of a finished shard: a resumed sweep must match them
RESUME_KEYS = ("target", "draft", "prompts", "num_prompts", "top_p", "max_new_tokens", "shard_size", "batch_size",
               "dtype", "engine")
_DECODE_DEFAULTS = {f.name: f.default for f in fields(DecodeConfig)}
_GROUP_KEYS = ("name", "trees", "methods", "seeds")


class ConfigError(ValueError):
    """Problems of a sweep configuration; ``problems`` lists them, one sentence each."""

    def __init__(self, source: str, problems: list[str]):
        self.source, self.problems = source, list(problems)
        plural = "s" if len(self.problems) > 1 else ""
        super().__init__(f"config {source}: {len(self.problems)} problem{plural}: " + " ".join(
            f"({i}) {p}" for i, p in enumerate(self.problems, start=1)))


@dataclass(frozen=True)
class TreeGroup:
    """Trees decoded with every one of ``methods`` at every one of ``seeds``.

    Attributes
    ----------
    name : str
        Label of the group (``group<i>`` when the file gives none).
    trees : tuple of str
        Tree names (empty only when ``methods`` is ``("ar",)``).
    methods : tuple of str
        Names ``spechub decode`` knows (``ar`` = plain sampling, no tree).
    seeds : tuple of int
        Seeds of the group's cells (the sweep's ``seeds`` unless the group sets its own).
    """

    name: str
    trees: tuple
    methods: tuple
    seeds: tuple


@dataclass(frozen=True)
class SweepConfig:
    """A validated sweep: what to decode, and how the work is cut into jobs.

    Attributes
    ----------
    target, draft : str
        Registry aliases, local folders, ``.gguf`` files or hub ids (see
        :func:`empirical.models.load_pair`); ``draft`` also ``layers:N``. A file or folder
        beside the config file is made absolute.
    prompts : str
        ``"builtin"`` (the project's own set), a JSONL path (resolved against the file's folder)
        or a Hugging Face dataset name.
    num_prompts : int
    temperatures : tuple of float
        Temperatures of p and q alike (0 = greedy).
    top_p : float
    groups : tuple of TreeGroup
    seeds : tuple of int
        Default seeds of the groups; prompt i of seed s draws from ``default_rng([s, i])``.
    max_new_tokens : int
    shard_size : int
        Prompts per job (the unit of work, of resumption and of loss when a rank is killed).
    batch_size : int
        Prompts decoded together in lockstep inside a job (at most ``shard_size``).
    device : str
        ``auto`` (CUDA when present), ``cpu``, ``cuda`` (under torchrun: ``cuda:LOCAL_RANK``, round
        robin when there are more ranks than GPUs) or ``cuda:i``.
    dtype, engine : str
        As ``spechub decode``.
    runtime : str
        ``fast`` (the default: static caches and CUDA graphs where the method and tree allow it; a
        job the fast path fails on is redone on the reference) or ``eager``, as ``spechub decode``.
    compile : str or None
        The fast path's pieces through ``torch.compile``: ``off``, ``verify``, ``forwards`` or
        ``all`` (:data:`empirical.compile_choice.COMPILE_CHOICES`); None: as the environment says.
    out : str or None
        Output folder named in the file (``spechub sweep --out`` wins).
    source : str
        The file read (for messages and metadata).
    """

    target: str
    draft: str
    prompts: str
    num_prompts: int
    temperatures: tuple
    top_p: float
    groups: tuple
    seeds: tuple
    max_new_tokens: int
    shard_size: int
    batch_size: int
    device: str
    dtype: str
    engine: str
    runtime: str = "fast"
    compile: str | None = None
    out: str | None = None
    source: str = "<dict>"

    def to_dict(self) -> dict:
        """Every setting as JSON-ready values.

        Returns
        -------
        dict
            Groups as dicts, tuples as lists.
        """
        return _jsonable(asdict(self))

    def identity(self) -> dict:
        """The settings of :data:`RESUME_KEYS`: two runs may share an output folder only when these agree.

        Returns
        -------
        dict
            JSON-ready values.
        """
        return {k: _jsonable(getattr(self, k)) for k in RESUME_KEYS}


def load_config(path) -> SweepConfig:
    """Read and validate a sweep file.

    Parameters
    ----------
    path : str or Path
        A TOML file (see ``docs/sweep.md`` and ``docs/sweep-example.toml``).

    Returns
    -------
    SweepConfig

    Raises
    ------
    ConfigError
        A missing or unparsable file, or every problem of its content (see :func:`parse_config`).
    """
    path = Path(path)
    if not path.is_file():
        raise ConfigError(str(path), ["the file does not exist."])
    if path.suffix.lower() != ".toml":
        raise ConfigError(str(path), [f"the file must be TOML (a .toml name); got {path.suffix or 'no suffix'!r}."])
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(str(path), [f"it is not valid TOML: {exc}."]) from None
    return parse_config(data, source=str(path), base=path.parent)


def parse_config(data: dict, *, source: str = "<dict>", base=None) -> SweepConfig:
    """Validate the content of a sweep file and fill in the defaults.

    Parameters
    ----------
    data : dict
        The parsed TOML: top-level settings and a ``[[group]]`` array of tables.
    source : str
        Name of the file, for messages.
    base : str or Path, optional
        Folder a relative ``prompts`` path is resolved against (the file's folder).

    Returns
    -------
    SweepConfig

    Raises
    ------
    ConfigError
        Listing every problem: an unknown key (with the nearest known one), a value of the wrong
        type or range, an unparsable or oversized tree, an unknown method, a method not valid on a
        tree (``block`` on a non-chain, a single-draft method on a branching tree), a missing
        prompts file, no group.
    """
    problems: list[str] = []
    known = [f.name for f in fields(SweepConfig) if f.name not in ("groups", "source")] + ["group"]
    for key in data:
        if key not in known:
            problems.append(_unknown(key, known, "top-level key"))
    get = _Reader(data, problems)
    seeds = get.integers("seeds", (0,), minimum=0)
    shard_size = get.integer("shard_size", DEFAULT_SHARD_SIZE, minimum=1)
    batch_size = get.integer("batch_size", shard_size, minimum=1)
    if batch_size > shard_size:
        problems.append(f"`batch_size` must be <= `shard_size` ({shard_size}): a batch lies inside one job; got {batch_size}.")
    engine = get.choice("engine", _DECODE_DEFAULTS["engine"], ("auto", "torch", "numpy"))
    config = SweepConfig(
        target=_local_path(get.text("target", _DECODE_DEFAULTS["target"]), base),
        draft=_local_path(get.text("draft", _DECODE_DEFAULTS["draft"]), base),
        prompts=_prompts_path(get.text("prompts", _DECODE_DEFAULTS["prompts"]), base, problems),
        num_prompts=get.integer("num_prompts", _DECODE_DEFAULTS["num_prompts"], minimum=1),
        temperatures=get.numbers("temperatures", (_DECODE_DEFAULTS["temperature"],), minimum=0.0),
        top_p=get.number("top_p", _DECODE_DEFAULTS["top_p"], minimum=0.0, maximum=1.0, open_low=True),
        groups=_groups(data.get("group"), seeds, engine, problems),
        seeds=seeds,
        max_new_tokens=get.integer("max_new_tokens", _DECODE_DEFAULTS["max_new_tokens"], minimum=1),
        shard_size=shard_size,
        batch_size=batch_size,
        device=_device(get.text("device", "auto"), problems),
        dtype=get.choice("dtype", _DECODE_DEFAULTS["dtype"], ("auto", "float32", "bfloat16", "float16")),
        engine=engine,
        runtime=get.choice("runtime", _DECODE_DEFAULTS["runtime"], RUNTIMES),
        compile=get.choice("compile", _DECODE_DEFAULTS["compile"], tuple(COMPILE_CHOICES)),
        out=get.text("out", None),
        source=source,
    )
    if problems:
        raise ConfigError(source, problems)
    return config


class _Reader:
    """Typed reads of top-level keys; a bad value appends a problem and yields the default."""

    def __init__(self, data: dict, problems: list, where: str = ""):
        self.data, self.problems, self.where = data, problems, where

    def _value(self, key, default, ok, rule):
        if key not in self.data:
            return default
        value = self.data[key]
        if not ok(value):
            self.problems.append(f"`{self.where}{key}` must be {rule}; got {value!r}.")
            return default
        return value

    def text(self, key, default):
        return self._value(key, default, lambda v: isinstance(v, str) and v.strip() != "", "a non-empty string")

    def choice(self, key, default, choices):
        return self._value(key, default, lambda v: v in choices, f"one of {', '.join(map(repr, choices))}")

    def integer(self, key, default, *, minimum):
        return self._value(key, default, lambda v: _is_int(v) and v >= minimum, f"an integer >= {minimum}")

    def number(self, key, default, *, minimum, maximum, open_low=False):
        def ok(v):
            return _is_number(v) and (v > minimum if open_low else v >= minimum) and v <= maximum

        return float(self._value(key, default, ok, f"a number in {'(' if open_low else '['}{minimum}, {maximum}]"))

    def integers(self, key, default, *, minimum):
        value = self._value(key, default, lambda v: _is_list(v, lambda x: _is_int(x) and x >= minimum),
                            f"a non-empty list of distinct integers >= {minimum}")
        return None if value is None else tuple(int(x) for x in value)

    def numbers(self, key, default, *, minimum):
        value = self._value(key, default, lambda v: _is_list(v, lambda x: _is_number(x) and x >= minimum),
                            f"a non-empty list of distinct numbers >= {minimum}")
        return None if value is None else tuple(float(x) for x in value)

    def texts(self, key, default):
        value = self._value(key, default, lambda v: _is_list(v, lambda x: isinstance(x, str) and x.strip() != ""),
                            "a non-empty list of distinct non-empty strings")
        return None if value is None else tuple(x.strip() for x in value)


def _groups(raw, seeds: tuple, engine: str, problems: list) -> tuple:
    """The ``[[group]]`` tables, each validated (trees, methods, their pairs)."""
    if raw is None:
        problems.append("at least one `[[group]]` table (trees and methods) is required.")
        return ()
    if not isinstance(raw, list) or not all(isinstance(g, dict) for g in raw):
        problems.append(f"`group` must be an array of tables, written `[[group]]`; got {raw!r}.")
        return ()
    groups = []
    for i, table in enumerate(raw, start=1):
        where = f"group {i}"
        for key in table:
            if key not in _GROUP_KEYS:
                problems.append(_unknown(key, _GROUP_KEYS, f"key of {where}"))
        get = _Reader(table, problems, where=f"{where}: ")
        name = get.text("name", f"group{i}")
        methods = get.texts("methods", ())
        trees = get.texts("trees", ())
        if "methods" not in table:
            problems.append(f"{where}: `methods` is required (e.g. methods = [\"spechub\", \"rrs\"]).")
        group = TreeGroup(name=name, trees=trees, methods=methods, seeds=get.integers("seeds", seeds, minimum=0))
        _check_group(group, where, engine, problems)
        groups.append(group)
    return tuple(groups)


def _check_group(group: TreeGroup, where: str, engine: str, problems: list) -> None:
    """Unknown methods, bad trees and (tree, method) pairs a method cannot verify."""
    methods = [m for m in group.methods if m in DECODE_METHODS]
    for m in group.methods:
        if m not in DECODE_METHODS:
            problems.append(f"{where}: {_unknown(m, DECODE_METHODS, 'method')}")
    if not group.trees and any(m != AR for m in group.methods):
        problems.append(f"{where}: `trees` must name at least one tree (e.g. trees = [\"2^4\"]) for methods other than 'ar'.")
    for tree in group.trees:
        try:
            check_tree_name(tree)
        except ValueError as exc:
            problems.append(f"{where}: {exc}")
            continue
        for method in methods:
            try:  # one place knows which method verifies which tree: DecodeConfig
                DecodeConfig(trees=(tree,), methods=(method,), engine=engine).validated()
            except ValueError as exc:
                problems.append(f"{where}: {' '.join(str(exc).split())}")


def _prompts_path(value: str, base, problems: list) -> str:
    """``builtin``, a dataset name, or a JSONL path made absolute against ``base``."""
    if value == "builtin" or base is None:
        return value
    path = Path(value).expanduser()
    if not path.is_absolute():
        path = Path(base) / path
    if path.is_file():
        return str(path.resolve())
    if value.endswith(".jsonl"):
        problems.append(f"`prompts` file {value!r} does not exist (looked for {str(path)!r}).")
    return value


def _local_path(value: str, base) -> str:
    """A model name that is a file or folder beside the config file, made absolute; any other
    name (an alias, a hub id, ``layers:N``, a path from the working folder) as given."""
    if base is None or Path(value).is_absolute():
        return value
    path = Path(base) / Path(value).expanduser()
    return str(path.resolve()) if path.exists() else value


def _device(value: str, problems: list) -> str:
    """``auto``, ``cpu``, ``cuda`` or ``cuda:i``."""
    head, _, index = value.partition(":")
    if head not in ("auto", "cpu", "cuda") or (index and (head != "cuda" or not index.isdigit())):
        problems.append(f"`device` must be 'auto', 'cpu', 'cuda' or 'cuda:<index>'; got {value!r}.")
        return "auto"
    return value


def _unknown(name: str, known, what: str) -> str:
    close = difflib.get_close_matches(str(name), list(known), n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return f"unknown {what} {name!r}{hint}; known: {', '.join(map(repr, known))}."


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v) -> bool:
    return (isinstance(v, (int, float)) and not isinstance(v, bool)) and v == v and abs(v) != float("inf")


def _is_list(v, ok) -> bool:
    return isinstance(v, list) and len(v) > 0 and all(ok(x) for x in v) and len(set(v)) == len(v)


def _jsonable(value):
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value
