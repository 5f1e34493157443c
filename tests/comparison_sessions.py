"""Sessions for the comparison tests: the demo CNN untrained, recorded on the demo's own data.

The demo session (``demo_session`` in conftest.py) is DemoCNN trained 12 epochs on the digits
and recorded on the 450 held-out digits; :func:`untrained_demo_session` records a freshly
initialised DemoCNN the same way (same split, seed, layers and pooled samples), so the two
compare as untrained against trained (Rauber et al.). :func:`other_data_session` records it on
data that is not the demo's, for the errors.
"""

from __future__ import annotations

from pathlib import Path


def _record(model_seed: int, data, out: Path, **options) -> Path:
    import torch

    import cnnvis
    from cnnvis.data.digits import DIGIT_CLASSES
    from cnnvis.models.demo import DEMO_LAYERS, DemoCNN

    torch.manual_seed(model_seed)
    model = DemoCNN(in_channels=1, n_classes=10).eval()
    rec = cnnvis.record(model, data, layers=DEMO_LAYERS, top_k=9, patch_size=16,
                        class_names=DIGIT_CLASSES, model_name="DemoCNN", seed=0,
                        progress=False, **options)  # fmt: skip
    rec.save(out)
    return out


def untrained_demo_session(out: Path) -> Path:
    """DemoCNN with its initial weights (seed 1), recorded on the demo's held-out digits."""
    from cnnvis.data.digits import DigitsDataset

    return _record(1, DigitsDataset("test", seed=0), out)


def other_data_session(out: Path, how: str) -> Path:
    """The untrained DemoCNN on other data: ``"fewer"`` (the first 300 held-out digits) or
    ``"reversed"`` (all 450 in reverse order: the same count, the labels in another order)."""
    from torch.utils.data import Subset

    from cnnvis.data.digits import DigitsDataset

    data = DigitsDataset("test", seed=0)
    if how == "fewer":
        return _record(1, data, out, max_samples=300)
    return _record(1, Subset(data, list(range(len(data)))[::-1]), out)
