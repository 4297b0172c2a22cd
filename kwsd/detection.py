"""The detection record every sink receives, and its JSON form (the contract in docs/contracts.md)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timezone


def utc_timestamp() -> str:
    """Now, as 2026-11-22T14:00:00.123Z."""
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass(frozen=True)
class Detection:
    keyword: str
    score: float
    audio_ms: int  # from the start of the stream to the end of the deciding window
    model: str
    timestamp: str = field(default_factory=utc_timestamp)

    def to_dict(self) -> dict:
        return {
            "keyword": self.keyword,
            "score": round(float(self.score), 4),
            "audio_ms": int(self.audio_ms),
            "timestamp": self.timestamp,
            "model": self.model,
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict())
