"""Classes of the synthetic benchmark and the rule that maps a cue (verb, noun) to the response that follows it."""
from __future__ import annotations

from typing import Dict, Tuple

VERB_KEYS: Tuple[str, ...] = ("push", "pull", "tap", "toss", "shake", "hold")
VERB_MOTIONS: Dict[str, str] = {
    "push": "moves away from the camera",
    "pull": "moves toward the camera",
    "tap": "moves toward the camera, then away",
    "toss": "moves away from the camera, then toward",
    "shake": "moves back and forth along the optical axis",
    "hold": "stays at one depth",
}
NOUN_KEYS: Tuple[str, ...] = ("red", "green", "blue", "yellow", "magenta", "cyan", "orange", "purple")
NOUN_RGB: Dict[str, Tuple[float, float, float]] = {  # object colour, RGB in [0, 1]
    "red": (0.86, 0.14, 0.12), "green": (0.14, 0.72, 0.20), "blue": (0.15, 0.30, 0.92),
    "yellow": (0.93, 0.83, 0.10), "magenta": (0.86, 0.16, 0.80), "cyan": (0.10, 0.80, 0.86),
    "orange": (0.96, 0.52, 0.08), "purple": (0.50, 0.18, 0.82),
}
RULE = "verb' = (verb + noun) mod V; noun' = (noun + 2*verb) mod N"


def response_of(verb: int, noun: int, num_verbs: int, num_nouns: int) -> Tuple[int, int]:
    """The response (verb', noun') that follows a cue (verb, noun): see `RULE`."""
    return (verb + noun) % num_verbs, (noun + 2 * verb) % num_nouns


def check_rule(num_verbs: int, num_nouns: int) -> None:
    """Raise ValueError unless the class counts are supported and `response_of` is a bijection on the V×N pairs."""
    if not 1 <= num_verbs <= len(VERB_KEYS):
        raise ValueError(f"synthetic.num_verbs = {num_verbs}: must be 1..{len(VERB_KEYS)} ({', '.join(VERB_KEYS)})")
    if not 1 <= num_nouns <= len(NOUN_KEYS):
        raise ValueError(f"synthetic.num_nouns = {num_nouns}: must be 1..{len(NOUN_KEYS)} ({', '.join(NOUN_KEYS)})")
    images = {response_of(v, n, num_verbs, num_nouns) for v in range(num_verbs) for n in range(num_nouns)}
    if len(images) != num_verbs * num_nouns:
        raise ValueError(f"the response rule ({RULE}) is not a bijection for num_verbs={num_verbs}, "
                         f"num_nouns={num_nouns} ({len(images)} distinct responses for {num_verbs * num_nouns} cues); "
                         f"use equal counts (e.g. 4 and 4) or another combination")
