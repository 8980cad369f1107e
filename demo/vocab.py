"""The words the demo worlds are made of: name syllables, values, and sentence/question templates.

Both worlds (the target world the demo teaches, and the general world the base model learns
language and reading from) share this vocabulary and these templates; they never share an entity
name or a town name (`world_of` splits every generated name between the two by a stable hash).
"""

from __future__ import annotations

import hashlib

SYLLABLES = [
    "ka",
    "lo",
    "mir",
    "tan",
    "vel",
    "dor",
    "sa",
    "ri",
    "en",
    "bo",
    "ul",
    "fen",
    "gar",
    "is",
    "na",
    "tor",
    "mi",
    "ro",
    "dal",
    "ze",
    "qui",
    "ash",
    "ber",
    "lin",
    "mo",
    "pe",
    "rus",
    "ta",
    "vin",
    "yo",
]
TOWN_SUFFIXES = ["ford", "wick", "holm", "mere", "by", "stead", "gate", "haven"]

JOBS = [
    "baker",
    "potter",
    "weaver",
    "carpenter",
    "miller",
    "glassblower",
    "tailor",
    "fisher",
    "mason",
    "brewer",
    "cobbler",
    "smith",
    "herbalist",
    "scribe",
    "shepherd",
    "cartographer",
    "jeweller",
    "bookbinder",
    "candlemaker",
    "ropemaker",
    "tanner",
    "cooper",
    "chandler",
    "locksmith",
]
INSTRUMENTS = [
    "flute",
    "harp",
    "lute",
    "drum",
    "fiddle",
    "horn",
    "zither",
    "bagpipe",
    "oboe",
    "cello",
    "trumpet",
    "lyre",
    "dulcimer",
    "tambourine",
    "bassoon",
    "mandolin",
]
TRAITS = [
    "a quiet",
    "a cheerful",
    "a stubborn",
    "a generous",
    "a curious",
    "a patient",
    "a restless",
    "a careful",
]

ATTRIBUTES = ("town", "job", "year", "instrument")

# Document sentences: several wordings per attribute, so documents describe entities in varied ways.
FACT_SENTENCES = {
    "town": [
        "{name} lives in {town}.",
        "{name} makes a home in the town of {town}.",
        "The town of {town} is where {name} lives.",
        "For many years {name} has lived in {town}.",
    ],
    "job": [
        "{name} works as a {job}.",
        "By trade, {name} is a {job}.",
        "{name} earns a living as a {job}.",
        "People know {name} as a skilled {job}.",
    ],
    "year": [
        "{name} was born in {year}.",
        "The year {year} saw the birth of {name}.",
        "{name} came into the world in {year}.",
        "Records say {name} was born in the year {year}.",
    ],
    "instrument": [
        "{name} plays the {instrument}.",
        "In the evenings {name} practises the {instrument}.",
        "The {instrument} is the instrument {name} plays.",
        "{name} is a keen player of the {instrument}.",
    ],
}
FILLER_SENTENCES = [
    "{name} is known as {trait} neighbour.",
    "Friends describe {name} as {trait} soul.",
    "{name} is {trait} person, people say.",
]

# Question paraphrases per attribute. The target world splits them by template into train /
# validation / test (TEMPLATE_SPLIT), so no test question's wording is ever trained on.
QUESTIONS = {
    "town": [
        "Where does {name} live?",
        "In which town does {name} live?",
        "What town is home to {name}?",
        "Which town does {name} live in?",
        "What is the home town of {name}?",
        "In what town does {name} make a home?",
    ],
    "job": [
        "What does {name} do for a living?",
        "What is the job of {name}?",
        "What is {name}'s occupation?",
        "What work does {name} do?",
        "What is the trade of {name}?",
        "What job does {name} have?",
    ],
    "year": [
        "When was {name} born?",
        "In what year was {name} born?",
        "What is the birth year of {name}?",
        "Which year was {name} born in?",
        "What year did {name} come into the world?",
        "In which year was {name} born?",
    ],
    "instrument": [
        "What instrument does {name} play?",
        "Which instrument does {name} play?",
        "What does {name} play in the evenings?",
        "Which instrument is {name} a player of?",
        "What is the instrument of {name}?",
        "What instrument is played by {name}?",
    ],
}
# template index -> split, the same for every attribute
TEMPLATE_SPLIT = {0: "train", 1: "train", 2: "train", 3: "validation", 4: "test", 5: "test"}


def world_of(name: str) -> str:
    """'target' or 'general': a stable hash split, so the two worlds never share a name."""
    return "target" if hashlib.sha256(name.encode()).digest()[0] % 2 == 0 else "general"


def make_word(rng, n_syllables: int) -> str:
    return "".join(rng.choice(SYLLABLES) for _ in range(n_syllables)).capitalize()


def make_person_name(rng) -> str:
    return f"{make_word(rng, 2)} {make_word(rng, rng.choice((2, 3)))}"


def make_town_name(rng) -> str:
    return make_word(rng, rng.choice((1, 2))) + rng.choice(TOWN_SUFFIXES)
