"""Random column values for the self-contained column kinds of the catalogue (no database needed).

Values are what the Oracle row holds, in the Python type their GoldenGate JSON literal has: str for
VARCHAR/CHAR/DATE text, int for integers, Decimal for NUMBER(p,s) with s > 0 (written with exactly
`scale` digits), None for NULL.
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from devtools.workload.catalogue import ORACLE_DATE, Column

FIRST_NAMES = [
    "Anna",
    "Björn",
    "Chloé",
    "David",
    "Elif",
    "Farah",
    "Günther",
    "Hana",
    "Ivan",
    "Jürgen",
    "Kenji",
    "Lena",
    "Marta",
    "Nils",
    "Olga",
    "Pierre",
    "Åsa",
    "Raj",
    "Sofia",
    "Tomás",
]
LAST_NAMES = [
    "Berg",
    "Ćorić",
    "Dubois",
    "Eriksson",
    "Fischer",
    "García",
    "Hansen",
    "Ivanova",
    "Jensen",
    "Kowalski",
    "Lindqvist",
    "Müller",
    "Nakamura",
    "O'Brien",
    "Petrov",
    "Quinn",
    "Rossi",
    "Schmidt",
]
COMPANIES = [
    "Acme",
    "Globex",
    "Initech",
    "Umbrella",
    "Hooli",
    "Stark Industries",
    "Wayne Enterprises",
    "Vandelay Import/Export",
    "Soylent",
    "Tyrell",
    "Nordvik AB",
    "Brännström & Söner",
]
CITIES = [
    "Berlin",
    "Boston",
    "Göteborg",
    "Lyon",
    "München",
    "New York",
    "Paris",
    "San José",
    "Stockholm",
    "Austin",
    "Köln",
    "Malmö",
]
STREETS = [
    "Main St",
    "Kungsgatan",
    "Rue de Rivoli",
    "Hauptstraße",
    "Elm Street",
    "Drottninggatan",
    "Broadway",
    "Königsallee",
]
PRODUCTS = [
    "Router",
    "Switch",
    "Firewall",
    "Laptop",
    "Support Plan",
    "Cloud Storage",
    "Consulting Day",
    "Licence Pack",
    "Monitor",
    "Headset",
]
JOB_TITLES = ["CEO", "CFO", "Buyer", "Engineer", "IT Manager", "Analyst", "Sales Rep", "Controller"]
WORDS = [
    "alpha",
    "blue",
    "copper",
    "delta",
    "east",
    "fern",
    "granite",
    "harbor",
    "iris",
    "jade",
    "kilo",
    "lumen",
    "maple",
    "north",
    "olive",
    "pine",
    "quartz",
    "river",
    "slate",
    "tide",
    "umber",
    "violet",
]


def _word_list(words: list[str]):
    return lambda rng: rng.choice(words)


VOCABULARIES = {
    "first_names": _word_list(FIRST_NAMES),
    "last_names": _word_list(LAST_NAMES),
    "companies": _word_list(COMPANIES),
    "cities": _word_list(CITIES),
    "products": _word_list(PRODUCTS),
    "job_titles": _word_list(JOB_TITLES),
    "words": _word_list(WORDS),
    "zipcodes": lambda rng: f"{rng.randint(1000, 99999):05d}",
    "streets": lambda rng: f"{rng.randint(1, 250)} {rng.choice(STREETS)}",
    "phones": lambda rng: (
        f"+{rng.choice([1, 33, 46, 49])} {rng.randint(100, 999)} {rng.randint(1000000, 9999999)}"
    ),
    "emails": lambda rng: (
        f"{rng.choice(FIRST_NAMES).lower()}.{rng.randint(1, 999)}@{rng.choice(WORDS)}.example.com"
    ),
    "urls": lambda rng: f"https://www.{rng.choice(WORDS)}-{rng.choice(WORDS)}.example.com",
}


def plain_value(column: Column, rng: random.Random, now: datetime, date_format: str = ORACLE_DATE) -> Any:
    """A value for a column whose kind needs no database context (a date written with `date_format`)."""
    kind = column.kind
    if kind == "constant":
        return column.value
    if kind == "choice":
        return rng.choice(column.values)
    if kind == "flag":
        return "Y" if rng.random() < column.yes_rate else "N"
    if kind == "text":
        if column.vocabulary not in VOCABULARIES:
            raise ValueError(f"{column.name}: unknown vocabulary {column.vocabulary}")
        text = " ".join(VOCABULARIES[column.vocabulary](rng) for _ in range(column.words))
        return text[:1].upper() + text[1:]
    if kind == "number":
        return rng.randint(column.min, column.max)
    if kind == "decimal":
        unit = 10**column.scale
        return Decimal(rng.randint(column.min * unit, column.max * unit)).scaleb(-column.scale)
    if kind == "date":
        day = now - timedelta(days=rng.randint(0, 365 * column.years_back))
        return day.replace(hour=0, minute=0, second=0, microsecond=0).strftime(date_format)
    raise ValueError(f"{column.name}: kind {kind} needs the database")


def char_padded(value: Any, pad: int | None) -> Any:
    """Oracle CHAR(n): text is right-padded with spaces to n characters."""
    return value.ljust(pad) if pad and isinstance(value, str) else value


BASE36 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"


def siebel_row_id(number: int) -> str:
    """'1-' + base 36, like Siebel ROW_IDs (1-4XK2P)."""
    digits = ""
    while True:
        number, rest = divmod(number, 36)
        digits = BASE36[rest] + digits
        if number == 0:
            return f"1-{digits}"
