"""Which examples share a batch: grouped by length, so that little of each batch is padding.

The collator pads every batch to its longest example, and a padded position costs as much
compute as a real one. Shuffling alone mixes a 20-token greeting with a 120-token spell;
grouping puts examples of similar length together and keeps the randomness in which
groups form and in the order of the batches.

The order is a pure function of seed and epoch, so a run resumed in the middle of an epoch
sees exactly the batches that the interrupted run would have seen.

Grouping also makes the batches of a small file nearly the same every epoch, and that costs
answers: on the two example files, tiny-bloom reproduced fewer of its training answers with
grouped batches than with freely shuffled ones (bench/quality.py, docs/benchmark.md). So by
default batches are shuffled freely, and grouped only where that saves a large share of the
positions, as in long data of very different lengths.
"""

import torch
from torch.utils.data import Sampler

# Examples are sorted by length within windows of this many batches: wide enough to find
# similar lengths, narrow enough that the batches still change from epoch to epoch.
GROUP_WINDOW_BATCHES = 4
# The share of all positions that grouping must save before it is chosen by default.
GROUPING_MIN_SAVING = 0.3


def epoch_batches(lengths: list[int], batch_size: int, seed: int, epoch: int, group_by_length: bool) -> list[list[int]]:
    """The batches of one epoch, as lists of example indices; every example exactly once."""
    generator = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    order = torch.randperm(len(lengths), generator=generator).tolist()
    if group_by_length:
        window = batch_size * GROUP_WINDOW_BATCHES
        order = [
            index
            for start in range(0, len(order), window)
            for index in sorted(order[start : start + window], key=lambda i: lengths[i], reverse=True)
        ]
    batches = [order[start : start + batch_size] for start in range(0, len(order), batch_size)]
    if group_by_length:
        # Sorted windows would otherwise feed long batches and short batches in a regular rhythm.
        # A short last batch stays last: the DataLoader cuts the index stream into full batches.
        full = len(lengths) // batch_size
        shuffle = torch.randperm(full, generator=generator).tolist()
        batches = [batches[i] for i in shuffle] + batches[full:]
    return batches


def token_counts(lengths: list[int], batches: list[list[int]]) -> tuple[int, int]:
    """Real tokens in these batches, and positions once each batch is padded to its longest example."""
    real = sum(lengths[i] for batch in batches for i in batch)
    padded = sum(len(batch) * max(lengths[i] for i in batch) for batch in batches)
    return real, padded


def run_token_counts(lengths: list[int], batch_size: int, seed: int, epochs: int, group_by_length: bool):
    """Real tokens and padded positions over every epoch's batches."""
    counts = [
        token_counts(lengths, epoch_batches(lengths, batch_size, seed, epoch, group_by_length))
        for epoch in range(epochs)
    ]
    return sum(real for real, _ in counts), sum(padded for _, padded in counts)


def choose_grouping(lengths: list[int], batch_size: int, seed: int, epochs: int) -> tuple[bool, str]:
    """Whether to group by length by default, and why: only where it saves GROUPING_MIN_SAVING of the positions."""
    _, shuffled = run_token_counts(lengths, batch_size, seed, epochs, False)
    _, grouped = run_token_counts(lengths, batch_size, seed, epochs, True)
    saving = 1 - grouped / shuffled
    if saving >= GROUPING_MIN_SAVING:
        return True, f"batches grouped by length: that saves {saving:.0%} of the positions"
    return False, f"batches shuffled freely: grouping by length would save only {saving:.0%} of the positions"


def padding_share(lengths: list[int], batches: list[list[int]]) -> float:
    """The part of all positions in these batches that is padding."""
    real, padded = token_counts(lengths, batches)
    return 1 - real / padded


class EpochSampler(Sampler[int]):
    """Feeds epoch_batches to a DataLoader of the same batch size, epoch by epoch.

    The Trainer calls set_epoch before every epoch (through accelerate's DataLoaderShard,
    also after skipping the batches a resumed run has already trained). Under several
    processes, accelerate hands consecutive batches to consecutive processes.
    """

    def __init__(self, lengths: list[int], batch_size: int, seed: int, group_by_length: bool):
        self.lengths, self.batch_size, self.seed, self.group_by_length = lengths, batch_size, seed, group_by_length
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.lengths)

    def __iter__(self):
        batches = epoch_batches(self.lengths, self.batch_size, self.seed, self.epoch, self.group_by_length)
        return (index for batch in batches for index in batch)
