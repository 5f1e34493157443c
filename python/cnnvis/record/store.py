"""The patches of the top-k entries, cut from a bounded store of input images."""

from __future__ import annotations

import numpy as np

from cnnvis.record.patches import cut_patches
from cnnvis.record.recording import PatchSource
from cnnvis.record.summaries import zeroed


class PatchStore:
    """Receptive-field patches of all top-k entries, cut lazily from a bounded image store.

    While the images seen so far fit in the budget, the store simply holds all of them (uint8,
    display range), row = sample position (*direct*): one copy per batch and no bookkeeping. The
    first batch that does not fit ends that: the pending patches are cut from it and from then
    on only the image of a new top-k entry (a *pending* entry) is copied, into a slot of the
    store, whose slots are reused, so caching makes no allocations and the store never grows
    past its budget plus one batch. Pending patches are then cut in bulk (:meth:`flush`) when
    more images are stored than the budget holds and at the end; cutting deduplicates
    (sample, box) pairs across layers, gathers the boxes of one size together and resizes them
    on uint8. Memory: the patch block (``S * k * P^2 * c`` bytes, the result itself) plus the
    store (at most ``budget`` bytes + one batch of images).
    """

    def __init__(self, states, patch_size: int, image_shape, budget: int | None) -> None:
        self.states = states
        self.p = patch_size
        self.c, self.h, self.w = (int(v) for v in image_shape)
        total = 0
        for st in states:
            st.offset = total
            total += st.n_channels * st.top_slot.shape[1]
        self.total = total
        self.block: np.ndarray | None = None  # (total, P, P, c), made by the first flush
        self.pending = np.zeros(total, dtype=np.uint8)  # by slot row: 1 while still to cut
        patch_bytes = total * patch_size * patch_size * self.c
        self.budget = max(32 << 20, patch_bytes // 4) if budget is None else int(budget)
        self.budget_images = self.budget // (self.c * self.h * self.w)
        self.image_store: np.ndarray | None = None  # (capacity, H, W, c) uint8
        self.direct = True  # the store holds every image so far, by sample position
        self.slot_of: dict[int, int] = {}  # sample position -> store slot (once not direct)
        self.free: list[int] = []  # released slots below ``fresh``
        self.fresh = 0  # slots from here on were never used since the last flush
        self.flushes = 0

    def _rows(self, st) -> np.ndarray:
        k = st.top_slot.shape[1]
        base = st.offset + np.arange(st.n_channels)[:, None] * k
        return base + st.top_slot  # (C, k) slot rows, in top-k order

    def _slots(self, n: int) -> list[int]:
        """n free store slots: released ones first, then never used ones (``fresh`` onwards).

        The store is allocated (or grown) to the budget plus this batch; its pages are only
        touched as slots are first used.
        """
        reuse = [self.free.pop() for _ in range(min(n, len(self.free)))]
        more = n - len(reuse)
        cap = 0 if self.image_store is None else self.image_store.shape[0]
        if self.fresh + more > cap:
            old = self.image_store
            cap = max(self.budget_images + n, self.fresh + more)
            self.image_store = zeroed((cap, self.h, self.w, self.c))
            if old is not None:
                self.image_store[: self.fresh] = old[: self.fresh]
        self.fresh += more
        return reuse + list(range(self.fresh - more, self.fresh))

    def _store_rows(self, samples: np.ndarray) -> np.ndarray:
        """The store slot of each sample's image."""
        if self.direct:
            return samples
        return np.fromiter((self.slot_of[v] for v in samples.tolist()), np.int64, len(samples))

    def fits(self, end: int) -> bool:
        """Whether the direct store has room for the images of samples 0..end-1."""
        return end <= self.budget_images

    def direct_rows(self, start: int, n: int) -> np.ndarray:
        """Rows start .. start + n - 1 of the direct store, for a batch's uint8 (n, H, W, c)
        images to be written into."""
        if self.image_store is None:  # pages are only touched as rows are written
            self.image_store = zeroed((self.budget_images, self.h, self.w, self.c))
        return self.image_store[start : start + n]

    def kept_images(self, samples: np.ndarray) -> np.ndarray:
        """The images of samples (positions) from the direct store."""
        return self.image_store[samples]

    def end_direct(self) -> None:
        """Cut the pending patches from the images kept so far; from now on only the images of
        new top-k entries are stored (:meth:`store`)."""
        if self.image_store is None:  # nothing kept, nothing pending
            self.direct = False
        else:
            self.flush()

    def pending_of(self, st) -> np.ndarray:
        """The layer's pending flags, (C, k) by slot: a view the C++ fold writes into."""
        k = st.top_slot.shape[1]
        return self.pending[st.offset : st.offset + st.n_channels * k].reshape(-1, k)

    def store(self, start: int, idx: np.ndarray, images) -> None:
        """Keep the uint8 (n, H, W, c) ``images`` (numpy) of batch positions ``idx`` until cut."""
        slots = self._slots(int(idx.size))
        self.image_store[np.asarray(slots)] = images
        self.slot_of.update(zip((idx + start).tolist(), slots))
        if len(self.slot_of) > self.budget_images:
            self._collect()
            if len(self.slot_of) > self.budget_images // 2:
                self.flush()

    def _collect(self) -> None:
        """Free the store slots of images that no pending entry needs any more."""
        keep = set()
        for st in self.states:
            pend = self.pending[self._rows(st)].astype(bool)
            keep.update(st.top_samples[pend].tolist())
        for smp in [smp for smp in self.slot_of if smp not in keep]:
            self.free.append(self.slot_of.pop(smp))

    def flush(self, ranked: bool = False) -> None:
        """Cut the patches of all pending entries and free the image cache.

        They go to their slots in the patch block, or (``ranked``: at the end of a pass that
        never flushed before) straight to their rows in top-k order, so the block is the result.
        """
        if self.block is None:
            self.block = zeroed((self.total, self.p, self.p, self.c))
        image_rows, boxes, targets = [], [], []
        for st in self.states:
            rows = self._rows(st)
            samples = st.top_samples
            pend = self.pending[rows].astype(bool) & (samples >= 0)
            if not pend.any():
                continue
            image_rows.append(self._store_rows(samples[pend]))
            boxes.append(st.rf.boxes(st.top_loc[pend]))
            if not ranked:
                targets.append(rows[pend])
            else:
                in_order = st.offset + np.arange(rows.size, dtype=np.int64).reshape(rows.shape)
                targets.append(in_order[pend])
        self.pending[:] = 0
        if image_rows:
            cut_patches(
                self.image_store, np.concatenate(image_rows), np.concatenate(boxes), self.p,
                out=self.block, out_rows=np.concatenate(targets),
            )  # fmt: skip
        self.slot_of = {}
        self.free = []
        self.fresh = 0
        self.flushes += 1
        self.direct = False

    def images_pay(self, n_images: int) -> bool:
        """Whether ``n_images`` images take no more bytes than the patches would."""
        return n_images * self.h * self.w <= self.total * self.p * self.p

    def result(self) -> dict[str, np.ndarray] | PatchSource:
        """The patches: ``{layer: (C, k, P, P, c) uint8}`` in top-k order (zeros where no
        sample), or, when nothing was cut during the pass and the images the lists refer to take
        no more bytes than their patches would, those images as a :class:`PatchSource` to cut
        them from on demand (a short pass then cuts nothing and keeps less).

        The patch block becomes the result (each layer's array is a view of its rows): cut in
        top-k order at once if nothing was cut before, else cut into the slots and put in
        top-k order in place, one layer at a time (one layer's patches of extra memory).
        """
        if self.flushes == 0:
            samples = np.unique(np.concatenate([st.top_samples.reshape(-1) for st in self.states]))
            samples = samples[samples >= 0]
            if self.images_pay(len(samples)):
                source = PatchSource(self.image_store[self._store_rows(samples)], samples, self.p)
                self.image_store = None
                return source
            self.flush(ranked=True)
        else:
            self.flush()
            for st in self.states:
                rows = self._rows(st).reshape(-1)
                seg = self.block[st.offset : st.offset + rows.size]
                seg[:] = self.block[rows]  # the right side is a copy: no overlap problem
                seg[st.top_samples.reshape(-1) < 0] = 0
        out = {}
        for st in self.states:
            n = st.n_channels * st.top_slot.shape[1]
            out[st.name] = self.block[st.offset : st.offset + n].reshape(
                st.n_channels, -1, self.p, self.p, self.c
            )
        self.block = None
        self.image_store = None
        return out
