"""Case-study networks (C9): BaseCNN, ShallowCNN, DeepCNN and their width variants."""

from __future__ import annotations

from cnnvis.models.casestudy import (
    MODELS,
    BaseCNN,
    CaseStudyCNN,
    DeepCNN,
    ShallowCNN,
    build_model,
)

__all__ = ["MODELS", "BaseCNN", "CaseStudyCNN", "DeepCNN", "ShallowCNN", "build_model"]
