"""Worked examples E1-E6 (theory.md section 6.1, k = 2 unless stated; hub a = token 0)."""

WORKED_EXAMPLES = {
    # name: (p, q, {method: acceptance}, spechub positional split, kseq rho*)
    "E1": ((.4, .4, .2), (.7, .2, .1), dict(single=.7, rrs=.79, rrs_wor=1.0, kseq=.825367, spechub=1.0), (.7, .3), 1.417891),
    "E2": ((.3, .3, .4), (.6, .3, .1), dict(single=.7, rrs=.73, rrs_wor=.775, kseq=.75, spechub=.85), (.7, .15), 1.5),
    "E3": ((.1, .2, .3, .4), (.4, .3, .2, .1), dict(single=.6, rrs=.72, rrs_wor=.764286, kseq=.75, spechub=.766667), (.6, .166667), 1.5),
    "E4": ((0, .5, .5, 0), (.28, .24, .24, .24), dict(single=.48, rrs=.7296, rrs_wor=.818246, kseq=.7296, spechub=.666667), (.48, .186667), 1.52),
    "E5": ((.1, .45, .45), (.8, .1, .1), dict(single=.3, rrs=.44, rrs_wor=1.0, kseq=.448523, spechub=1.0), (.3, .7), 1.742615),
    "E6": ((.5, .3, .2), (.5, .3, .2), dict(single=1.0, rrs=1.0, rrs_wor=1.0, kseq=1.0, spechub=1.0), None, None),
}

#: k = 3 values of theory.md 6.1 (spechub = the hub-set law, "OPT greedy" there)
WORKED_EXAMPLES_K3 = {
    "E3": dict(single=.6, rrs=.768, rrs_wor=.840298, kseq=.793950, spechub=.933333),
    "E4": dict(rrs=.859392, rrs_wor=1.0, kseq=.859392, spechub=1.0),
}
