"""Source sequences: a total order of the changes of one source, stored as an order-preserving string.

A sequence is a tuple of non-negative integers (for example GoldenGate `(pos, kafka_offset)` or
Debezium Oracle `(commit_scn, scn, ssn, kafka_offset)`). It is stored as text whose plain string order
equals the tuple order, so Spark and Delta can compare and take max() of it without a custom type:
each component is written as two digits giving its length, then its digits (`7` -> `017`,
`1234` -> `041234`), and components are joined with `.`. The length prefix makes every component
prefix-free, so comparing two encodings compares their tuples component by component.
"""

from __future__ import annotations

MAX_DIGITS = 99


class SequenceError(ValueError):
    pass


def encode_sequence(components: tuple[int, ...] | list[int]) -> str:
    if not components:
        raise SequenceError("a sequence needs at least one component")
    parts = []
    for value in components:
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise SequenceError(f"sequence components are non-negative integers, got {value!r}")
        digits = str(value)
        if len(digits) > MAX_DIGITS:
            raise SequenceError(f"sequence component {value} has more than {MAX_DIGITS} digits")
        parts.append(f"{len(digits):02d}{digits}")
    return ".".join(parts)


def decode_sequence(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(part[2:]) for part in text.split("."))
    except ValueError as exc:
        raise SequenceError(f"not an encoded sequence: {text!r}") from exc
