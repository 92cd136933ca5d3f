"""Batches of similar length: every example once per epoch, reproducible, less padding."""

import pytest
from torch.utils.data import DataLoader

from llm_instruct.data.batching import EpochSampler, epoch_batches, padding_share

LENGTHS = [20, 120, 35, 118, 22, 60, 61, 25, 119, 40, 90, 21, 58, 33, 95, 100, 30]  # 17 examples


@pytest.mark.parametrize("group", [True, False])
@pytest.mark.parametrize("epoch", [0, 1, 2])
def test_every_example_exactly_once_per_epoch_short_batch_last(group, epoch):
    batches = epoch_batches(LENGTHS, 4, seed=42, epoch=epoch, group_by_length=group)
    assert sorted(i for batch in batches for i in batch) == list(range(len(LENGTHS)))
    assert [len(batch) for batch in batches] == [4, 4, 4, 4, 1]


def test_the_order_is_a_function_of_seed_and_epoch():
    first = epoch_batches(LENGTHS, 4, seed=42, epoch=0, group_by_length=True)
    assert first == epoch_batches(LENGTHS, 4, seed=42, epoch=0, group_by_length=True)
    assert first != epoch_batches(LENGTHS, 4, seed=42, epoch=1, group_by_length=True)
    assert first != epoch_batches(LENGTHS, 4, seed=7, epoch=0, group_by_length=True)


def test_grouping_pads_less_than_shuffling():
    grouped = [padding_share(LENGTHS, epoch_batches(LENGTHS, 4, 42, epoch, True)) for epoch in range(5)]
    shuffled = [padding_share(LENGTHS, epoch_batches(LENGTHS, 4, 42, epoch, False)) for epoch in range(5)]
    assert max(grouped) < min(shuffled)


def test_padding_share_counts_every_position_up_to_the_longest_of_its_batch():
    assert padding_share([10, 30, 20, 20], [[0, 1], [2, 3]]) == pytest.approx(1 - 80 / (60 + 40))


def test_the_sampler_feeds_the_epochs_batches_through_a_dataloader():
    sampler = EpochSampler(LENGTHS, batch_size=4, seed=42, group_by_length=True)
    loader = DataLoader(list(range(len(LENGTHS))), batch_size=4, sampler=sampler)
    for epoch in (0, 3):
        sampler.set_epoch(epoch)
        assert [batch.tolist() for batch in loader] == epoch_batches(LENGTHS, 4, 42, epoch, True)
