"""Voice ids as the robots finally agree on them.

Hearing gives each new voice an id (``voice_<robot>_<n>``) and, when two ids turn out to be one
person (two robots heard a newcomer at once, or a robot re-clustered), publishes the retired id with
``alias_of`` set on /voices/identities. Everything that keys state by voice id follows these aliases.
"""
from __future__ import annotations

from collections import OrderedDict

from voice_robot import messages as m

MAX_ALIASES = 1024


def follow_aliases(aliases: dict[str, str], key: str) -> str:
    """The id a chain of merges (id -> id it was merged into) ends at; cycles stop where they close."""
    seen = set()
    while key in aliases and key not in seen:
        seen.add(key)
        key = aliases[key]
    return key


class VoiceAliases:
    def __init__(self):
        self._alias: OrderedDict[str, str] = OrderedDict()

    def on_identity(self, v: m.VoiceIdentity) -> bool:
        """Learn from a VoiceIdentity; True when it retired an id."""
        if not v.alias_of or v.alias_of == v.voice_id:
            return False
        self._alias[v.voice_id] = v.alias_of
        self._alias.move_to_end(v.voice_id)
        while len(self._alias) > MAX_ALIASES:
            self._alias.popitem(last=False)
        return True

    def canonical(self, voice_id: str) -> str:
        return follow_aliases(self._alias, voice_id)

    def same(self, a: str, b: str) -> bool:
        return bool(a) and bool(b) and self.canonical(a) == self.canonical(b)
