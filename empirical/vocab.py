r"""Vocabulary checks for a real pair: one shared vocabulary for p and q, and finite logits.

Convention: p = target, q = draft, last axis = vocabulary. Two models of one family share a
tokenizer but may pad their output layers to different sizes (Qwen2.5-7B has 152,064 rows, the
0.5B 151,936; both tokenizers hold 151,665 tokens). Rows beyond the shorter layer are tokens no
tokenizer emits, so both laws are cut to the shared ``n`` = the smaller number of rows (at least
the tokenizer's size): the logits are truncated before the softmax, which is the law
renormalised on the shared ids,

.. math:: p'_i = p_i / (1 - m), \quad m = \sum_{i \ge n} p_i,

and the dropped mass ``m`` (under the run's temperature, before top-p) is recorded for each model.
NaN or inf logits (fp16 overflow, a broken checkpoint) raise :class:`NonFiniteLogitsError` naming
the row and position; the decoder adds the prompt.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["SharedVocab", "NonFiniteLogitsError", "shared_vocab", "check_finite"]


class NonFiniteLogitsError(ValueError):
    """NaN or inf in a model's logits.

    At batch ``row`` and sequence ``position`` (``prompt`` once the decoder knows it).
    """

    def __init__(self, model: str, row: int, position: int, prompt=None):
        self.model, self.row, self.position, self.prompt = model, int(row), int(position), prompt
        where = f"prompt {prompt}" if prompt is not None else f"batch row {row}"
        super().__init__(f"{model} logits are NaN or inf at {where}, position {position} (fp16 overflow? "
                         "use --dtype float32 or bfloat16); the records written so far are kept.")

    def for_prompt(self, prompt) -> "NonFiniteLogitsError":
        """The same error naming ``prompt`` instead of the batch row.

        Parameters
        ----------
        prompt : int

        Returns
        -------
        NonFiniteLogitsError
        """
        return NonFiniteLogitsError(self.model, self.row, self.position, prompt)


@dataclass
class SharedVocab:
    """The shared vocabulary of a pair and the probability mass cut from each model's law.

    Attributes
    ----------
    n : int
        Shared vocabulary size (logits kept: ids ``0 .. n-1``).
    rows : dict
        Output-layer rows of ``"target"`` and ``"draft"``.
    dropped_max, dropped_sum, laws : dict
        Per model: largest and summed dropped mass, and number of laws cut (running tallies).
    """

    n: int
    rows: dict
    dropped_max: dict = field(default_factory=lambda: {"target": 0.0, "draft": 0.0})
    dropped_sum: dict = field(default_factory=lambda: {"target": 0.0, "draft": 0.0})
    laws: dict = field(default_factory=lambda: {"target": 0, "draft": 0})

    def cut(self, logits, model: str, temperature: float = 1.0):
        """``logits`` [..., rows] cut to [..., n], tallying the dropped mass of softmax(logits / T).

        O(rows) per law; returns ``logits`` itself when nothing is cut (no copy, no tally).

        Parameters
        ----------
        logits : torch.Tensor
        model : str
        temperature : float, optional

        Returns
        -------
        torch.Tensor
        """
        import torch

        if logits.shape[-1] == self.n:
            return logits
        z = logits.float().reshape(-1, logits.shape[-1])
        if temperature > 0:
            dropped = torch.softmax(z / temperature, dim=-1)[:, self.n:].sum(dim=-1)  # [m]
        else:  # greedy: all the mass sits on the argmax
            dropped = (z.argmax(dim=-1) >= self.n).float()
        dropped = dropped[torch.isfinite(dropped)]
        if dropped.numel():
            self.dropped_max[model] = max(self.dropped_max[model], float(dropped.max()))
            self.dropped_sum[model] += float(dropped.sum())
            self.laws[model] += int(dropped.numel())
        return logits[..., : self.n]

    def to_dict(self) -> dict:
        """JSON form: ``n``, ``rows``, and per model the mean and max dropped mass.

        Returns
        -------
        dict
        """
        return {
            "n": self.n,
            "rows": dict(self.rows),
            "dropped_mass": {m: {"mean": self.dropped_sum[m] / self.laws[m] if self.laws[m] else 0.0,
                                 "max": self.dropped_max[m], "laws": self.laws[m]} for m in ("target", "draft")},
        }


def shared_vocab(target, draft, tokenizer, name_t: str = "target", name_d: str = "draft") -> SharedVocab:
    """The :class:`SharedVocab` of two models whose tokenizers agree (checked beforehand).

    Parameters
    ----------
    target : transformers.PreTrainedModel
    draft : transformers.PreTrainedModel
    tokenizer : transformers tokenizer
        The tokenizer.
    name_t : str, optional
    name_d : str, optional

    Returns
    -------
    SharedVocab

    Raises
    ------
    ValueError
        If an output layer has fewer rows than the tokenizer has tokens (ids it could not score).
    """
    rows = {"target": _rows(target), "draft": _rows(draft)}
    size = len(tokenizer)
    for who, name in (("target", name_t), ("draft", name_d)):
        if rows[who] < size:
            raise ValueError(f"{name!r} has {rows[who]} output rows, fewer than the {size} tokens of its tokenizer; "
                             "it cannot score every token.")
    return SharedVocab(n=min(rows.values()), rows=rows)


def check_finite(logits, positions, model: str) -> None:
    """Raise :class:`NonFiniteLogitsError` at the first NaN/inf of ``logits`` [R, w, n].

    ``positions`` [R, w] (array-like) gives each entry's sequence position. Two reductions (a NaN
    propagates through ``amax``, +inf shows in ``amax`` and -inf in ``amin``), so no temporary of the
    size of ``logits`` is made (a 50-prompt prefill at n = 151,936 is ~5 G entries), and one host
    synchronisation per call; the search for the place runs only on failure.

    Parameters
    ----------
    logits : torch.Tensor
    positions : sequence of int
    model : str

    Raises
    ------
    NonFiniteLogitsError
        If the logits hold NaN or inf at one of ``positions``.
    """
    import numpy as np
    import torch

    bad = ~(torch.isfinite(logits.amax(dim=-1)) & torch.isfinite(logits.amin(dim=-1)))  # [R, w]
    if bool(bad.any()):
        r, c = (int(x) for x in torch.nonzero(bad)[0])
        raise NonFiniteLogitsError(model, r, int(np.asarray(positions)[r, c]))


def _rows(model) -> int:
    return int(model.get_output_embeddings().weight.shape[0])
