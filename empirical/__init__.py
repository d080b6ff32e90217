"""Real language models: loading target/draft pairs, tree speculative decoding, measurement.

Convention: p = target, q = draft, last axis = vocabulary. Model probabilities are computed in
float32 (never fp16) and handed to the float64 core. torch and transformers are imported here,
never by ``spechub_theory``.
"""
