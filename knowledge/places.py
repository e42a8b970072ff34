"""Communes by name before and after the 1 July 2025 merger, so that a citizen who names a
former commune ("tôi ở xã Ngọc Tảo cũ") is told which commune now serves them.

The units and the old-to-new mapping come from the ``vietnamadminunits`` package's data
(read as files, without importing its address parser): the province's communes and wards
before the merger, those after it, and which old units each new one took in.
"""

from __future__ import annotations

import importlib.util
import json
import re
import sqlite3
import unicodedata
from collections import defaultdict
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from knowledge.schema import Commune
from knowledge.text import fold

_MARKED_KINDS = ("xã", "phường", "thị trấn")  # how a unit is named before its name
_KINDS = tuple(map(fold, _MARKED_KINDS))
_AT = ("o", "tai", "thuoc", "ve", "dan", "nguoi", "from", "in")  # "ở Ngọc Tảo", "người Tam Thuấn"


@dataclass(frozen=True)
class Place:
    """A commune or ward a question names, and the unit that serves it now."""

    name: str  # "Xã Ngọc Tảo"
    district: str  # the former district ("Huyện Phúc Thọ"); "" for a unit named after 2025
    now: tuple[str, ...]  # the units serving it now ("Xã Hát Môn"); several when it was split
    ours: bool  # served by this commune


def _data_dir() -> Path | None:
    spec = importlib.util.find_spec("vietnamadminunits")
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations))) / "data"


@cache
def _units(province: str) -> tuple[list[tuple[str, str, str]], dict[str, str],
                                   dict[str, list[str]]]:
    """The province's old units (name, district, key), its new units by key, and the new
    units' keys each old unit's key went to."""
    data = _data_dir()
    if data is None:
        return [], {}, {}
    key = re.sub(r"[^a-z0-9]", "", fold(province))
    with sqlite3.connect(f"file:{data / 'dataset.db'}?mode=ro", uri=True) as db:
        old = [(ward, district, f"{key}_{dk}_{wk}") for ward, district, dk, wk in db.execute(
            "SELECT ward, district, districtKey, wardKey FROM admin_units_legacy "
            "WHERE provinceKey = ?", (key,))]
        new = dict(db.execute("SELECT wardKey, ward FROM admin_units WHERE provinceKey = ?",
                              (key,)).fetchall())
    mapping = json.loads((data / "converter_2025.json").read_text(encoding="utf-8"))
    went: dict[str, list[str]] = defaultdict(list)
    for new_key, old_keys in mapping["DICT_PROVINCE_WARD_NO_DIVIDED"].get(key, {}).items():
        for old_key in old_keys:
            went[old_key].append(new_key)
    for old_key, parts in mapping["DICT_PROVINCE_WARD_DIVIDED"].get(key, {}).items():
        went[old_key] += [p["newWardKey"] for p in parts]
    return old, new, dict(went)


# Syllables that, typed without marks, are more often everyday words than part of a place's
# name ("van con": vẫn còn or Vân Côn).
_EVERYDAY = frozenset("van con co la da roi nay the thi ma cung nua lai di ve ra vao".split())


def _fits(typed: str, name: str) -> bool:
    """Whether every letter is the name's, or the name's with its marks left out."""
    return len(typed) == len(name) and all(a == b or a == fold(b)
                                           for a, b in zip(typed, name, strict=True))


def _marked_short(name: str) -> str:
    """A unit's name without its kind, lower case: "Xã Ngọc Tảo" → "ngọc tảo"."""
    lower = name.lower()
    for kind in _MARKED_KINDS:
        if lower.startswith(kind + " "):
            return lower[len(kind) + 1:]
    return lower


def _short(name: str) -> str:
    """A unit's name without its kind, folded: "Xã Ngọc Tảo" → "ngoc tao"."""
    return fold(_marked_short(name))


class Places:
    """The units of one commune's province, before and after the merger."""

    def __init__(self, commune: Commune) -> None:
        self.commune = commune
        ours = _short(commune.name)
        self._former = {_short(n) for n in commune.former_communes}
        old, new, went = _units(commune.province)
        self._by_name: dict[str, list[Place]] = defaultdict(list)
        for name, district, key in old:
            now = tuple(dict.fromkeys(new[k] for k in went.get(key, ()) if k in new))
            if now:
                self._by_name[_short(name)].append(
                    Place(name, district, now, any(_short(n) == ours for n in now)))
        for name in new.values():
            if _short(name) not in self._by_name:
                self._by_name[_short(name)].append(Place(name, "", (name,), _short(name) == ours))
        # A unit is named as "xã …", "… cũ", or, for our own former communes, "ở …".
        names = sorted(self._by_name, key=len, reverse=True)
        alternatives = "|".join(re.escape(n) for n in names)
        self._pattern = re.compile(
            rf"\b(?:(?P<kind>{'|'.join(_KINDS)}) |(?P<at>{'|'.join(_AT)}) )?"
            rf"(?P<name>{alternatives})(?P<old> cu)?\b") if names else None

    def mentioned(self, question: str) -> tuple[list[Place], str]:
        """The units the question names, other than this commune under its own name, and the
        question without them (folded) when there are any."""
        if self._pattern is None:
            return [], question
        ours = _short(self.commune.name)
        found: list[Place] = []
        typed = " ".join(unicodedata.normalize("NFC", question).lower().split())
        folded = fold(typed)  # folding keeps every character's place
        rest = folded
        for m in self._pattern.finditer(folded):
            name = m["name"]
            marked = typed[m.start("name"):m.end("name")]
            if not any(_fits(marked, _marked_short(p.name)) for p in self._by_name[name]):
                continue  # typed with other marks: "xã mình khai" is no "Minh Khai"
            if marked == name and not m["old"] and set(name.split()) <= _EVERYDAY:
                continue  # unmarked, it reads as everyday words: "sổ ở xã vẫn còn", no Vân Côn
            if name == ours and not m["old"]:
                continue  # "xã Hát Môn": this commune
            if not (m["kind"] or m["old"] or (m["at"] and name in self._former)):
                continue  # a bare name may be anything ("hội liên hiệp phụ nữ")
            places = self._by_name[name]
            if name in self._former:
                places = [p for p in places if p.ours] or places
            found += [p for p in places if p not in found]
            rest = rest.replace(m[0], " ", 1)
        return found, " ".join(rest.split()) if found else question
