"""What every phase of the comparison shares: the tools, the rounds, names, the display of argv."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from peers.tools import PEERS_DIR, Ghost, Tool


@dataclass
class Bench:
    tools: list[Tool]
    root: Path
    rounds: int
    quick: bool
    errors: list[str] = field(default_factory=list)
    counter: int = 0

    @property
    def scratch(self) -> str:
        return str(self.root / "out.txt")

    @property
    def ghost(self) -> Ghost:
        found = [t for t in self.tools if isinstance(t, Ghost)]
        assert found, "ghost is always measured"
        return found[0]

    def fresh(self, seconds: int = 300) -> tuple[str, list[str]]:
        """A unique task name and a `sleep <seconds>.<n>` payload findable by its argv.
        Tasks that must outlive a long phase (the N managed ones) sleep longer than it."""
        self.counter += 1
        return f"b{self.counter:06d}", ["sleep", f"{seconds}.{self.counter:06d}"]

    def order(self, round_no: int, items: Sequence[Tool] | None = None) -> list[Tool]:
        """Round-robin: each round starts with the next tool, so drift hits every tool alike."""
        items = list(self.tools if items is None else items)
        k = round_no % len(items) if items else 0
        return items[k:] + items[:k]

    def fail(self, tool: Tool, what: str, exc: Exception) -> None:
        message = f"{tool.name}: {what} failed: {exc}"
        self.errors.append(message)
        print(f"  ! {message}", flush=True)

    def show(self, argv: Sequence[str], names: dict[str, str] | None = None) -> str:
        """An argv as a reader would type it: installed peers and scratch paths shortened,
        whole words in `names` (task ids, names) replaced by placeholders."""
        words = []
        for i, word in enumerate(argv):
            if names and word in names:
                words.append(names[word])
                continue
            if i == 0:
                words.append(os.path.basename(word))
                continue
            for prefix in (str(PEERS_DIR), str(self.root)):
                if word.startswith(prefix + os.sep):
                    word = os.path.basename(word)
            words.append(word)
        return " ".join(words)
