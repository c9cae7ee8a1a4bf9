"""Top-k selection with a hold buffer and a bound on changes per session (Qlib's TopkDropout idea).

Each session: rank the scored symbols (best first; ties broken by symbol so the result is
deterministic). A holding is kept while its rank stays inside ``k + buffer``; holdings that fell out
leave, worst first, at most ``max_changes`` of them per session. Holdings beyond ``k`` (after ``k`` was
lowered, say) always leave, worst first, so the target never holds more than ``k`` names. Free slots
are filled with the best-ranked symbols not held, so one session makes at most ``max_changes``
replacements (a leaver by rank and the entry that takes its slot) besides filling slots that were
already empty (the first session builds the whole book). A held symbol without a score this session
(no bar, too little history) ranks below every scored one and counts as fallen out.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from stockflow.errors import ConfigError


@dataclass(frozen=True, slots=True)
class TopkSelection:
    """The target set of one session and how it differs from the book it started from."""

    target: tuple[str, ...]  # symbols to hold, best rank first
    enter: tuple[str, ...]  # in target, not held (best rank first)
    exit: tuple[str, ...]  # held, not in target (worst rank first)
    keep: tuple[str, ...]  # held and in target
    ranks: Mapping[str, int]  # 1-based rank of every scored symbol

    @property
    def changes(self) -> int:
        """Symbols that enter plus symbols that leave."""
        return len(self.enter) + len(self.exit)


def rank_scores(scores: Mapping[str, float]) -> dict[str, int]:
    """1-based ranks, best (highest) score first; ties broken by symbol; non-finite scores unranked."""
    finite = [(s, float(v)) for s, v in scores.items() if v is not None and math.isfinite(float(v))]
    ordered = sorted(finite, key=lambda sv: (-sv[1], sv[0]))
    return {s: i + 1 for i, (s, _) in enumerate(ordered)}


def select_topk(
    scores: Mapping[str, float],
    held: Iterable[str],
    *,
    k: int,
    buffer: int = 0,
    max_changes: int | None = None,
) -> TopkSelection:
    """The target set for one session: top ``k`` by score, holdings kept inside ``k + buffer``.

    ``max_changes`` bounds the leavers by rank of one session (and so the entries that take their
    slots); ``None`` means no bound. Raises :class:`ConfigError` for ``k < 1``, ``buffer < 0`` or
    ``max_changes < 0``.
    """
    if k < 1:
        raise ConfigError(f"portfolio.top_k must be >= 1, got {k}")
    if buffer < 0:
        raise ConfigError(f"portfolio.hold_buffer must be >= 0, got {buffer}")
    if max_changes is not None and max_changes < 0:
        raise ConfigError(f"portfolio.max_changes must be >= 0 or unset, got {max_changes}")
    ranks = rank_scores(scores)
    unranked = len(ranks) + 1
    held_set = set(held)

    def rank(sym: str) -> int:
        return ranks.get(sym, unranked)

    held_worst_first = sorted(held_set, key=lambda s: (-rank(s), s))
    limit = max_changes if max_changes is not None else len(held_set) + len(ranks)
    leaving: list[str] = []
    staying: list[str] = []
    for sym in held_worst_first:
        fell_out = sym not in ranks or ranks[sym] > k + buffer
        if fell_out and len(leaving) < limit:
            leaving.append(sym)
        else:
            staying.append(sym)
    # Never more than k names: the worst of those still staying leave too, whatever the bound.
    staying.sort(key=lambda s: (rank(s), s))
    while len(staying) > k:
        leaving.append(staying.pop())
    slots = k - len(staying)  # empty slots plus the slots of at most ``max_changes`` leavers
    candidates = [s for s in sorted(ranks, key=ranks.__getitem__) if s not in held_set]
    entering = candidates[:slots]
    target = sorted([*staying, *entering], key=lambda s: (rank(s), s))
    return TopkSelection(
        target=tuple(target),
        enter=tuple(entering),
        exit=tuple(sorted(leaving, key=lambda s: (-rank(s), s))),
        keep=tuple(s for s in target if s in held_set),
        ranks=ranks,
    )
