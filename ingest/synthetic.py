"""Seeded synthetic catalog feeds of any size, in the feed format (benchmarks and crash tests)."""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Any

_SYLLABLES = ("ka", "lo", "mi", "ra", "ten", "sol", "va", "ne", "dro", "li", "mar", "po", "zu",
              "fin", "ael", "bri", "cor", "dan", "el", "fa", "gri", "ho", "is", "jo", "ky")
_WORDS = ("love", "night", "fire", "dream", "heart", "city", "blue", "wild", "gold", "rain",
          "summer", "shadow", "dance", "river", "light", "home", "storm", "echo", "sky", "road")

# Shares of the catalog by kind; with the per-kind edge counts below this gives about three
# relationships per entity, like the real catalog.
SHARES = {"artist": 0.10, "album": 0.15, "song": 0.65, "playlist": 0.02, "podcast": 0.005,
          "episode": 0.075}
N_GENRES = 500


def _name(rng: random.Random, words: int) -> str:
    parts = ["".join(rng.choice(_SYLLABLES) for _ in range(rng.randint(2, 3))).capitalize()]
    parts += [rng.choice(_WORDS) for _ in range(words - 1)]
    return " ".join(parts)


def generate(n_entities: int, seed: int = 7) -> Iterator[dict[str, Any]]:
    """About `n_entities` records (genres, artists, albums, songs, playlists, podcasts,
    episodes) whose references all resolve within the feed."""
    rng = random.Random(seed)
    n = {kind: max(1, int(n_entities * share)) for kind, share in SHARES.items()}
    genres = [f"g:syn-{i}" for i in range(N_GENRES)]
    for i, g in enumerate(genres):
        rec: dict[str, Any] = {"kind": "genre", "id": g, "name": f"{_name(rng, 1)} {i}"}
        if i >= 50:
            rec["parent"] = genres[i % 50]
        yield rec
    for i in range(n["artist"]):
        yield {"kind": "artist", "id": f"ar:syn-{i}", "name": _name(rng, rng.randint(1, 2)),
               "genres": rng.sample(genres, rng.randint(1, 2)),
               "popularity": round(rng.random(), 3),
               "related": sorted({f"ar:syn-{rng.randrange(n['artist'])}" for _ in range(3)}
                                 - {f"ar:syn-{i}"})}
    for i in range(n["album"]):
        yield {"kind": "album", "id": f"al:syn-{i}", "name": _name(rng, rng.randint(1, 3)),
               "artists": [f"ar:syn-{rng.randrange(n['artist'])}"],
               "release_date": f"{rng.randint(1960, 2024)}-{rng.randint(1, 12):02d}-01"}
    for i in range(n["song"]):
        artists = {f"ar:syn-{rng.randrange(n['artist'])}" for _ in range(1 + (rng.random() < 0.2))}
        yield {"kind": "song", "id": f"so:syn-{i}", "name": _name(rng, rng.randint(1, 4)),
               "artists": sorted(artists), "album": f"al:syn-{rng.randrange(n['album'])}",
               "genres": [rng.choice(genres)], "duration_ms": rng.randint(90_000, 420_000),
               "popularity": round(rng.random(), 3)}
    for i in range(n["playlist"]):
        songs = {f"so:syn-{rng.randrange(n['song'])}" for _ in range(20)}
        yield {"kind": "playlist", "id": f"pl:syn-{i}", "name": _name(rng, 2),
               "songs": sorted(songs)}
    for i in range(n["podcast"]):
        yield {"kind": "podcast", "id": f"po:syn-{i}", "name": _name(rng, 3),
               "description": " ".join(rng.choice(_WORDS) for _ in range(12)),
               "genres": [rng.choice(genres)], "language": "en"}
    for i in range(n["episode"]):
        yield {"kind": "episode", "id": f"ep:syn-{i}", "name": _name(rng, 4),
               "podcast": f"po:syn-{rng.randrange(n['podcast'])}",
               "duration_ms": rng.randint(600_000, 7_200_000)}
