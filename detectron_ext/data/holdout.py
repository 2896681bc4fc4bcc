"""The held-out test set of a dataset that ships no split of its own."""
import random


def seeded_split(items, test_fraction: float, seed: int):
    """Deterministic split: sort, shuffle with random.Random(seed), the first
    round(test_fraction * n) items are the test set. Returns (train, test), each sorted."""
    items = sorted(items)
    rng = random.Random(seed)
    rng.shuffle(items)
    n_test = round(test_fraction * len(items))
    return sorted(items[n_test:]), sorted(items[:n_test])
