"""Dataset preparation: ``python -m data_prep <dataset|check-videos|extract-frames> ...``.

Parsers for the six real datasets' annotation files (``data_prep.parsers``), list/label-map writing
with a manifest (``data_prep.datasets``), optional frame extraction (``data_prep.extract``) and a
video health check (``data_prep.check``). See README, section "Datasets".
"""
from __future__ import annotations

from pan_lib.data.lists import AnnotationError

__all__ = ["AnnotationError"]
