"""One process of the 2-process recording that ``test_distributed.py`` starts with torchrun.

``python distributed_worker.py OUT MODEL.pt`` makes a gloo process group and records the
digits twice in it: through the CLI (``cnnvis record``, rank 0 writes) into ``OUT/cli``, and
through the library, with a patch budget small enough to cut the patches during the pass, into
``OUT/cut`` (rank 0 saves it). ``torchrun -m cnnvis record`` making its own group is the same
path after the group is made.
"""

from __future__ import annotations

import sys

import torch
import torch.distributed as dist

from cnnvis.cli import main
from cnnvis.record import record

# shared by the test's one-process runs
CLI_ARGS = ["--arch", "demo", "--data", "digits", "--max-samples", "257", "--batch-size", "32",
            "--max-pooled", "60", "--top-k", "4", "--patch-size", "6", "--quiet"]  # fmt: skip
LIBRARY_KW = {"max_samples": 121, "batch_size": 1, "top_k": 3, "max_pooled": 40,
              "patch_size": 5, "patch_budget": 1024, "progress": False}  # fmt: skip


def library_recording(model_path: str):
    """The library's recording of the digits (inside a process group, if one is made)."""
    from cnnvis.data import load_dataset
    from cnnvis.models.checkpoints import load_model

    model, _ = load_model(model_path, num_classes=10, in_channels=1, input_size=8, arch="demo")
    model.eval()
    return record(model, load_dataset("digits", "test"), **LIBRARY_KW)


def run(out: str, model_path: str) -> int:
    torch.set_num_threads(1)
    dist.init_process_group("gloo")
    try:
        rc = main(["record", "--model", model_path, "--out", f"{out}/cli", *CLI_ARGS])
        if rc != 0:
            return rc
        rec = library_recording(model_path)
        if dist.get_rank() == 0:
            rec.save(f"{out}/cut")
    finally:
        dist.destroy_process_group()
    return 0


if __name__ == "__main__":
    sys.exit(run(sys.argv[1], sys.argv[2]))
