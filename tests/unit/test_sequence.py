import random

import pytest

from transforms.sequence import SequenceError, decode_sequence, encode_sequence


def test_string_order_equals_tuple_order():
    rng = random.Random(3)
    tuples = [
        tuple(rng.choice([0, 1, 9, 10, 99, 100, rng.randrange(10**25)]) for _ in range(3)) for _ in range(400)
    ]
    by_text = sorted(tuples, key=encode_sequence)
    assert by_text == sorted(tuples)


def test_round_trip_keeps_every_component():
    for value in [(0,), (7, 12345678901234567890123), (10**30, 0, 5)]:
        assert decode_sequence(encode_sequence(value)) == value


@pytest.mark.parametrize("bad", [(), (-1,), (1.5,), (True,), ("12",)])
def test_rejects_what_is_not_a_tuple_of_non_negative_ints(bad):
    with pytest.raises(SequenceError):
        encode_sequence(bad)
