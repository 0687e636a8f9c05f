"""BibTeX entries of the works FingerBench's datasets, protocols, algorithms and statistics
follow. Declarations use them: a dataset's :class:`bench.datasets.base.DatasetInfo` has a
``bibtex`` field, a plugin class a ``bibtex`` attribute, a protocol its entry in
:data:`PROTOCOL_BIBTEX`; a report collects what its runs used into ``references.bib``
(:func:`bench.report.citations.references_bib`). An entry holds only facts taken from the
publication; a DOI only where the publisher assigned one.
"""

from __future__ import annotations

import re

FVC2000 = """@article{maio2002fvc2000,
  author  = {Maio, Dario and Maltoni, Davide and Cappelli, Raffaele and Wayman, James L. and Jain, Anil K.},
  title   = {{FVC2000}: Fingerprint Verification Competition},
  journal = {IEEE Transactions on Pattern Analysis and Machine Intelligence},
  volume  = {24},
  number  = {3},
  pages   = {402--412},
  year    = {2002},
  doi     = {10.1109/34.990140}
}"""

FVC2002 = """@inproceedings{maio2002fvc2002,
  author    = {Maio, Dario and Maltoni, Davide and Cappelli, Raffaele and Wayman, James L. and Jain, Anil K.},
  title     = {{FVC2002}: Second Fingerprint Verification Competition},
  booktitle = {Proceedings of the 16th International Conference on Pattern Recognition (ICPR)},
  volume    = {3},
  pages     = {811--814},
  year      = {2002}
}"""

FVC2004 = """@inproceedings{maio2004fvc2004,
  author    = {Maio, Dario and Maltoni, Davide and Cappelli, Raffaele and Wayman, James L. and Jain, Anil K.},
  title     = {{FVC2004}: Third Fingerprint Verification Competition},
  booktitle = {Biometric Authentication (ICBA 2004)},
  series    = {Lecture Notes in Computer Science},
  volume    = {3072},
  pages     = {1--7},
  publisher = {Springer},
  year      = {2004},
  doi       = {10.1007/978-3-540-25948-0_1}
}"""

FVC_PERFORMANCE = """@article{cappelli2006performance,
  author  = {Cappelli, Raffaele and Maio, Dario and Maltoni, Davide and Wayman, James L. and Jain, Anil K.},
  title   = {Performance Evaluation of Fingerprint Verification Systems},
  journal = {IEEE Transactions on Pattern Analysis and Machine Intelligence},
  volume  = {28},
  number  = {1},
  pages   = {3--18},
  year    = {2006},
  doi     = {10.1109/TPAMI.2006.20}
}"""

MCC = """@article{cappelli2010mcc,
  author  = {Cappelli, Raffaele and Ferrara, Matteo and Maltoni, Davide},
  title   = {Minutia Cylinder-Code: A New Representation and Matching Technique for Fingerprint Recognition},
  journal = {IEEE Transactions on Pattern Analysis and Machine Intelligence},
  volume  = {32},
  number  = {12},
  pages   = {2128--2141},
  year    = {2010},
  doi     = {10.1109/TPAMI.2010.52}
}"""

NBIS = """@techreport{watson2007nbis,
  author      = {Watson, Craig I. and Garris, Michael D. and Tabassi, Elham and Wilson, Charles L. and McCabe, R. Michael and Janet, Stanley and Ko, Kenneth},
  title       = {User's Guide to {NIST} Biometric Image Software ({NBIS})},
  institution = {National Institute of Standards and Technology},
  type        = {NIST Interagency Report},
  number      = {7392},
  year        = {2007}
}"""

NFIQ2 = """@techreport{tabassi2021nfiq2,
  author      = {Tabassi, Elham and Olsen, Martin and Bausinger, Oliver and Busch, Christoph and Figlarz, Andrew and Fiumara, Gregory and Henniger, Olaf and Merkle, Johannes and Ruhland, Timo and Schiel, Christopher and Schwaiger, Michael},
  title       = {{NIST} Fingerprint Image Quality 2},
  institution = {National Institute of Standards and Technology},
  type        = {NIST Interagency Report},
  number      = {8382},
  year        = {2021},
  doi         = {10.6028/NIST.IR.8382}
}"""

ERROR_VERSUS_REJECT = """@article{grother2007quality,
  author  = {Grother, Patrick and Tabassi, Elham},
  title   = {Performance of Biometric Quality Measures},
  journal = {IEEE Transactions on Pattern Analysis and Machine Intelligence},
  volume  = {29},
  number  = {4},
  pages   = {531--543},
  year    = {2007},
  doi     = {10.1109/TPAMI.2007.1019}
}"""

SUBSETS_BOOTSTRAP = """@article{bolle2004subsets,
  author  = {Bolle, Ruud M. and Ratha, Nalini K. and Pankanti, Sharath},
  title   = {Error analysis of pattern recognition systems---the subsets bootstrap},
  journal = {Computer Vision and Image Understanding},
  volume  = {93},
  number  = {1},
  pages   = {1--33},
  year    = {2004},
  doi     = {10.1016/j.cviu.2003.08.002}
}"""

NIST_SD4 = """@misc{watson1992sd4,
  author       = {Watson, Craig I. and Wilson, Charles L.},
  title        = {{NIST} Special Database 4: Fingerprint Database},
  howpublished = {National Institute of Standards and Technology},
  year         = {1992},
  url          = {https://www.nist.gov/srd/nist-special-database-4}
}"""

NIST_SD302 = """@techreport{fiumara2019sd302,
  author      = {Fiumara, Gregory and Flanagan, Patricia and Schwarz, Matthew and Tabassi, Elham and Boehnen, Christopher},
  title       = {{NIST} Special Database 302: Nail to Nail Fingerprint Challenge},
  institution = {National Institute of Standards and Technology},
  type        = {NIST Technical Note},
  number      = {2007},
  year        = {2019},
  doi         = {10.6028/NIST.TN.2007}
}"""

SOCOFING = """@misc{shehu2018socofing,
  author        = {Shehu, Yahaya Isah and Ruiz-Garcia, Ariel and Palade, Vasile and James, Anne},
  title         = {Sokoto Coventry Fingerprint Dataset},
  year          = {2018},
  eprint        = {1807.10609},
  archivePrefix = {arXiv}
}"""

SYNTHESIS = """@incollection{cappelli2009synthesis,
  author    = {Cappelli, Raffaele},
  title     = {Fingerprint Sample Synthesis},
  booktitle = {Encyclopedia of Biometrics},
  editor    = {Li, Stan Z. and Jain, Anil K.},
  publisher = {Springer},
  year      = {2009},
  doi       = {10.1007/978-0-387-73003-5_3}
}"""

#: The works each registered protocol follows (by protocol name).
PROTOCOL_BIBTEX: dict[str, tuple[str, ...]] = {
    "fvc": (FVC2000, FVC_PERFORMANCE),
    "all-pairs": (FVC2000, FVC_PERFORMANCE),
    "socofing": (SOCOFING,),
    "f-vs-s": (NIST_SD4,),
}

_KEY = re.compile(r"@\w+\s*\{\s*([^,\s]+)\s*,")


def entries(text: str) -> dict[str, str]:
    """The entries of a BibTeX text by key (``@type{key, ...}``), in order."""
    starts = [m.start() for m in _KEY.finditer(text)] + [len(text)]
    return {_KEY.match(text, a).group(1): text[a:b].strip() for a, b in zip(starts, starts[1:])}
