"""A small real corpus for `ragtune run`: invented harbour towns, one text file each, several facts each."""

from __future__ import annotations

import random
from pathlib import Path

TOWNS = [
    "Brightwater", "Selby Reach", "Korrin", "Aldmouth", "Vessa", "Tarnholt", "Quillon", "Merrow",
    "Dunfell", "Ostrava Bay", "Kelpie Sound", "Harrowgate",
]  # fmt: skip
RIVERS = [
    "Sel",
    "Ambry",
    "Tove",
    "Larn",
    "Ouse",
    "Kettle",
    "Brann",
    "Wyre",
    "Ildon",
    "Maren",
    "Corra",
    "Fenn",
]
GOODS = [
    "salt",
    "amber",
    "timber",
    "wool",
    "herring",
    "copper",
    "tin",
    "linen",
    "oysters",
    "slate",
    "rope",
    "tar",
]
FOUNDERS = ["Mara Quill", "Tomas Reed", "Ilse Varga", "Odo Brandt", "Petra Lune", "Jory Haske",
            "Wenna Cole", "Bram Ostler", "Sefa Marr", "Ludo Penn", "Nia Holt", "Cato Reyes"]  # fmt: skip


def town_text(i: int) -> str:
    rng = random.Random(i)
    town, river, good, founder = TOWNS[i], RIVERS[i], GOODS[i], FOUNDERS[i]
    year = 1500 + rng.randrange(300)
    ships = 3 + rng.randrange(40)
    return (
        f"# {town}\n\n"
        f"{town} is a harbour town at the mouth of the river {river}. It was founded in {year} by {founder}, "
        f"a merchant who sailed from the north with {ships} ships.\n\n"
        f"The town grew rich on the {good} trade. Every spring the {good} fair fills the old market square, "
        f"and traders arrive from across the sea to buy {good} at the quay.\n\n"
        f"The lighthouse of {town} was built of grey stone. Its keeper rings a bell when fog rolls in "
        f"from the {river} estuary.\n"
    )


def write_corpus(folder: Path, n: int = 10) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        (folder / f"{TOWNS[i].lower().replace(' ', '_')}.md").write_text(town_text(i), encoding="utf-8")
    return folder
