"""Real language models: loading target/draft pairs, tree speculative decoding, measurement.

Convention: p = target, q = draft, last axis = vocabulary. Model probabilities are computed in
float32 on the device (never fp16) and verified in float64, on the device (``fast_verify``) or by
the numpy core (``spechub_theory``); torch and transformers are imported here, never by
``spechub_theory``.

**Tokens per step** = emitted tokens per target forward = accepted drafts + 1 (the bonus token at
a leaf or the residual token after a rejection is included), pooled over prompts.

Modules: ``models`` (load_pair), ``decoder`` (decode one prompt), ``engines`` / ``fast_verify``
(where drafts are sampled and verified), ``kv_forward`` (cached tree-masked forwards),
``node_rates`` (exact acceptance of every method at each verified node), ``run`` / ``records`` /
``summary`` (measured, resumable runs), ``prompts``, ``cli_decode`` (``spechub decode``), ``tiny``
(random tiny models for tests).
"""
