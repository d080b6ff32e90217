"""Tiny randomly initialised Llama pairs and a word-level tokenizer, for tests and offline examples.

Convention: the target is a random Llama; the draft is a perturbed copy, so acceptance is neither 0
nor 1. Nothing is downloaded; everything is built from a ``LlamaConfig``.
"""

from __future__ import annotations

import copy
from contextlib import contextmanager

__all__ = ["tiny_tokenizer", "tiny_llama", "tiny_pair", "save_pair", "one_thread", "one_thread_fixture"]

#: special tokens of the tiny tokenizer (ids 0 and 1); every other token is a word ``w<i>``
EOS, UNK = "<eos>", "<unk>"


def tiny_tokenizer(vocab_size: int = 64):
    """A word-level ``PreTrainedTokenizerFast`` over ``<eos>``, ``<unk>``, ``w0`` ... (whitespace split).

    Parameters
    ----------
    vocab_size : int, optional

    Returns
    -------
    PreTrainedTokenizerFast
    """
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {EOS: 0, UNK: 1, **{f"w{i}": i + 2 for i in range(vocab_size - 2)}}
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token=UNK))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    return PreTrainedTokenizerFast(tokenizer_object=tok, eos_token=EOS, unk_token=UNK, pad_token=EOS)


def tiny_llama(vocab_size: int = 64, *, hidden: int = 32, layers: int = 2, seed: int = 0, sharpness: float = 2.0):
    """A random ``LlamaForCausalLM`` in float32 eval mode with peaked logits.

    Its logits have standard deviation about ``sharpness`` (the head is redrawn with that scale), so
    p is peaked rather than near uniform.

    Parameters
    ----------
    vocab_size : int, optional
    hidden : int, optional
    layers : int, optional
    seed : int, optional
    sharpness : float, optional

    Returns
    -------
    transformers.LlamaForCausalLM
    """
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(
        vocab_size=vocab_size, hidden_size=hidden, intermediate_size=2 * hidden, num_hidden_layers=layers,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512, tie_word_embeddings=False,
        bos_token_id=None, eos_token_id=0, pad_token_id=0,
    )
    with torch.random.fork_rng(devices=[]):  # seeded init without touching the global generator
        torch.manual_seed(seed)
        model = LlamaForCausalLM(config).float().eval()
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        model.lm_head.weight.normal_(0.0, sharpness / hidden**0.5, generator=gen)  # normed hidden states have unit RMS
    return model


def tiny_pair(vocab_size: int = 64, *, noise: float = 0.3, seed: int = 0, sharpness: float = 2.0, layers: int = 2,
              device: str = "cpu"):
    """A :class:`empirical.models.ModelPair` of a tiny target and a perturbed copy as draft.

    ``noise`` is the relative size of the Gaussian perturbation of every draft weight.

    Parameters
    ----------
    vocab_size : int, optional
    noise : float, optional
    seed : int, optional
    sharpness : float, optional
    layers : int, optional
    device : str, optional

    Returns
    -------
    ModelPair
    """
    import torch

    from .models import ModelPair, _eos_ids

    tokenizer = tiny_tokenizer(vocab_size)
    target = tiny_llama(vocab_size, layers=layers, seed=seed, sharpness=sharpness).to(device)
    draft = copy.deepcopy(target)
    gen = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for param in draft.parameters():
            scale = noise * param.detach().float().std().clamp_min(1e-3)
            param.add_(torch.randn(param.shape, generator=gen).to(param.device) * scale)
    return ModelPair(
        target=target, draft=draft, tokenizer=tokenizer, device=torch.device(device), dtype=torch.float32,
        eos_token_ids=_eos_ids(tokenizer, target), names={"target": "tiny", "draft": "tiny-perturbed"},
    )


def save_pair(pair, folder, names=("target", "draft")) -> tuple:
    """Save a pair's target and draft, each with the tokenizer, as model folders ``folder/<name>``.

    The folders are what :func:`empirical.models.load_pair` reads, as a user's local models.

    Parameters
    ----------
    pair : empirical.models.ModelPair
        The pair to save (``target``, ``draft``, ``tokenizer``).
    folder : str or pathlib.Path
        Parent folder of the two model folders.
    names : tuple of str, optional
        Folder names of the target and the draft.

    Returns
    -------
    tuple of pathlib.Path
        The target's and the draft's folders.
    """
    from pathlib import Path

    paths = tuple(Path(folder) / name for name in names)
    for path, model in zip(paths, (pair.target, pair.draft)):
        model.save_pretrained(path)
        pair.tokenizer.save_pretrained(path)
    return paths


@contextmanager
def one_thread():
    """Run torch on one CPU thread inside the block; the previous setting is restored.

    Tiny models: thread hand-off costs more than it saves, and a busy machine makes it far worse.

    Yields
    ------
    None
    """
    import torch

    old = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(old)


def one_thread_fixture():
    """Generator form of :func:`one_thread` for a pytest fixture.

    ``_threads = pytest.fixture(scope="module", autouse=True)(one_thread_fixture)``.

    Yields
    ------
    None
    """
    with one_thread():
        yield
