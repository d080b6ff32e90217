"""``spechub audit``: prove or refute that a third-party speculative sampler is lossless.

Convention: p = target, q = draft, last axis = vocabulary; three levels (function, generator, end
to end), each with a documented protocol, transformers adapters, the project's reference and
planted bugs. torch and transformers are imported inside the functions that need them.
"""

from .cases import FunctionCase, Sampling, synthetic_case
from .end_to_end import HFGenerate, ReferenceGenerate, TargetLaw, audit_generate, target_law
from .function_level import HFSpeculativeSampling, ReferenceVerifier, audit_function, ensemble_law, ensemble_sweep
from .generator_level import HFCandidateGenerator, ReferenceGenerator, audit_generator, capture_candidate_generator
from .planted import FUNCTION_BUGS, PlantedVerifier, planted_function_bugs
from .protocol import resolve_sampler

__all__ = ["FunctionCase", "Sampling", "synthetic_case", "HFGenerate", "ReferenceGenerate", "TargetLaw", "audit_generate",
           "target_law", "HFSpeculativeSampling", "ReferenceVerifier", "audit_function", "ensemble_law", "ensemble_sweep",
           "HFCandidateGenerator", "ReferenceGenerator", "audit_generator", "capture_candidate_generator",
           "FUNCTION_BUGS", "PlantedVerifier", "planted_function_bugs", "resolve_sampler"]
