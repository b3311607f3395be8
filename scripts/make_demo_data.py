"""Rebuild the bundled demo data (src/whyrec/data/movietweetings_demo) from MovieTweetings-100k.

    python scripts/make_demo_data.py ../shared/data/movietweetings-100k

Keeps the 10-core of the ratings (users and movies with at least 10 ratings), the movies they
rate, and the dataset's MIT LICENSE. Rows are written in the original file order and format.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

K_CORE = 10


def main(source: Path) -> None:
    target = Path(__file__).resolve().parents[1] / "src" / "whyrec" / "data" / "movietweetings_demo"
    target.mkdir(parents=True, exist_ok=True)
    with open(source / "ratings.dat", encoding="utf-8") as handle:
        rows = [line.rstrip("\n").split("::") for line in handle]
    keep = rows
    while True:
        users: dict[str, int] = {}
        items: dict[str, int] = {}
        for user, item, *_ in keep:
            users[user] = users.get(user, 0) + 1
            items[item] = items.get(item, 0) + 1
        kept = [r for r in keep if users[r[0]] >= K_CORE and items[r[1]] >= K_CORE]
        if len(kept) == len(keep):
            break
        keep = kept
    movie_ids = {r[1] for r in keep}
    with open(target / "ratings.dat", "w", encoding="utf-8") as out:
        out.writelines("::".join(r) + "\n" for r in keep)
    with (
        open(source / "movies.dat", encoding="utf-8") as src,
        open(target / "movies.dat", "w", encoding="utf-8") as out,
    ):
        out.writelines(line for line in src if line.split("::", 1)[0] in movie_ids)
    shutil.copy(source / "LICENSE", target / "LICENSE")
    print(
        f"{len(keep):,} ratings, {len({r[0] for r in keep}):,} users, {len(movie_ids):,} movies -> {target}"
    )


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "../shared/data/movietweetings-100k"))
