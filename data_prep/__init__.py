"""Dataset preparation: ``python -m data_prep <dataset|check-videos|extract-frames|decode|baseline> ...``.

The preparers of the real datasets (``data_prep.datasets``; the annotation parsers they use are in
``pan_lib.data.parsers``, the shared steps and the SSv2 preparer in ``pan_lib.data.preparation``),
optional frame extraction (``data_prep.extract``) and a video health check (``data_prep.check``).
Decoding into arrays (``pan_lib.data.decoded``) and the embedded dataset
(``pan_lib.data.registry.prepare_embedded``) live in the library, which runs them itself.
See README, section "Datasets".
"""
from __future__ import annotations

from pan_lib.data.lists import AnnotationError

__all__ = ["AnnotationError"]
