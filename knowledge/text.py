"""Vietnamese text normalisation for matching: how citizens type → comparable tokens.

Pipeline: Unicode NFC → lower case → diacritic folding (đ→d; old/new tone placement such as
"hoà"/"hòa" folds to the same word) → tokens → domain abbreviations and chat shorthand with
context rules. ``typing_variants`` and ``translate_english`` serve the matcher's spelling
correction and English questions. Folding is lossy on purpose: most citizens type without
diacritics, so the index and the query meet in the folded space. Bigrams carry the meaning
that single folded syllables lose ("can cuoc" vs "can").
"""

from __future__ import annotations

import itertools
import re
import unicodedata
from collections.abc import Iterable

_TOKEN = re.compile(r"[a-z0-9]+")


def _fold_table() -> dict[int, str]:
    """Map every precomposed Latin letter to its base letter (Vietnamese tones and hats)."""
    table: dict[int, str] = {ord("đ"): "d", ord("Đ"): "d"}
    for code in list(range(0x00C0, 0x0250)) + list(range(0x1E00, 0x1F00)):
        base = unicodedata.normalize("NFD", chr(code))[0]
        if base.isascii() and base.isalpha():
            table[code] = base.lower()
    return table


_FOLD = _fold_table()


def fold(text: str) -> str:
    """Lower-case and strip Vietnamese diacritics: "Đăng ký Kết hôn" → "dang ky ket hon"."""
    return unicodedata.normalize("NFC", text).lower().translate(_FOLD)


# Short forms expanded (folded form → folded expansion). "dc/đc" ("được") is left alone; "ks",
# "kt", "hk", "ct" clash with general chat shorthand and are read by context first.
ABBREVIATIONS: dict[str, str] = {
    "dk": "dang ky",
    "dky": "dang ky",
    "dki": "dang ky",
    "dangky": "dang ky",
    "ki": "ky",  # kí / ký
    "li": "ly",  # lí hôn / ly hôn
    "gks": "giay khai sinh",
    "tb": "thong bao",
    "gkt": "giay khai tu",
    "dkks": "dang ky khai sinh",
    "dkkt": "dang ky khai tu",
    "dkkh": "dang ky ket hon",
    "dktt": "dang ky tam tru",
    "dktv": "dang ky tam vang",
    "dkth": "dang ky thuong tru",
    "cccd": "can cuoc cong dan",
    "cc": "can cuoc",
    "cmnd": "chung minh nhan dan",
    "cmt": "chung minh thu",
    "ctck": "chung thuc chu ky",
    "ctbs": "chung thuc ban sao",
    "hd": "hop dong",
    "hs": "ho so",
    "xn": "xac nhan",
    "kt3": "so tam tru",
    "gpxd": "giay phep xay dung",
    "gcn": "giay chung nhan",
    "qsdd": "quyen su dung dat",
    "gcnqsdd": "giay chung nhan quyen su dung dat",
    "gpkd": "giay phep kinh doanh",
    "gp": "giay phep",
    "xd": "xay dung",
    "dkkd": "dang ky kinh doanh",
    "hkd": "ho kinh doanh",
    "bhxh": "bao hiem xa hoi",
    "bhyt": "bao hiem y te",
    "ubnd": "uy ban nhan dan",
    "hdnd": "hoi dong nhan dan",
    "tthc": "thu tuc",  # thủ tục hành chính: every question's kind, naming none of them
    "xntthn": "xac nhan tinh trang hon nhan",
    "gxntthn": "giay xac nhan tinh trang hon nhan",
    "tthn": "tinh trang hon nhan",
    "nkt": "nguoi khuyet tat",
    "gd": "gia dinh",
    "tcxh": "tro cap xa hoi",
    "btxh": "bao tro xa hoi",
    "dvc": "dich vu cong",
    "onl": "online",
    "sdt": "so dien thoai",
    "ng": "nguoi",
    "lm": "lam",
    "ko": "khong",
    "k": "khong",
    "kg": "khong",
    "sanh": "sinh",  # southern pronunciation, as typed
    "hok": "khong",
    "khum": "khong",
    "kh": "khong",
    "j": "gi",
    "gj": "gi",
    "ntn": "nhu the nao",
    "bn": "bao nhieu",
    "bnh": "bao nhieu",
    "bnhiu": "bao nhieu",
    "mik": "minh",
    "mk": "minh",
    "r": "roi",
    "rui": "roi",
    "z": "vay",
    "vk": "vo",
    "ad": "admin",
    "pk": "phai khong",
    "lv1": "muc 1",  # VNeID levels
    "lv2": "muc 2",
    "vpcc": "van phong cong chung",
    # Defaults of the context-dependent short forms below.
    "hk": "khong",
    "ct": "chu tich",
}

# Context rules: a short form whose meaning depends on the previous word.
_AFTER_DANG_KY = {"ks": "khai sinh", "kt": "khai tu", "kh": "ket hon", "tt": "tam tru",
                  "tv": "tam vang", "hk": "ho khau", "kd": "kinh doanh", "xe": "xe"}
_CONTEXT: dict[tuple[str, str], str] = {
    **{("ky", short): full for short, full in _AFTER_DANG_KY.items()},
    ("giay", "ks"): "khai sinh",
    ("giay", "kt"): "khai tu",
    ("lam", "ks"): "khai sinh",
    ("ho", "kd"): "kinh doanh",
    ("tt", "hn"): "hon nhan",
    ("trang", "hn"): "hon nhan",
    ("ra", "ca"): "cong an",  # "ra xã hay ra ca"
    ("len", "ca"): "cong an",
    ("so", "hk"): "ho khau",
    ("nhap", "hk"): "ho khau",
    ("cat", "hk"): "ho khau",
    ("tach", "hk"): "ho khau",
    ("xoa", "hk"): "ho khau",
    ("1", "hk"): "ho khau",
    ("chung", "hk"): "ho khau",
    ("chuyen", "hk"): "ho khau",
    ("vo", "ck"): "chong",
    ("nha", "ck"): "chong",
    ("nha", "vk"): "vo",
}
# Short forms read by the next word: "ct bản sao" is chứng thực, "ct xã" is chủ tịch.
_BEFORE: dict[tuple[str, str], str] = {
    **{("ct", nxt): "chung thuc" for nxt in ("ban", "chu", "hd", "hop", "giay", "van", "di")},
    **{("ca", nxt): "cong an" for nxt in ("xa", "phuong", "huyen", "tinh")},  # "CA xã"
}
_AGE = re.compile(r"(\d{1,3})t")  # "14t": 14 tuổi

# "người Nhật", "chồng Hàn": a nationality after a person means a foreign element. Bare words
# are not expanded ("nhất", "hạn" fold to the same letters).
_PEOPLE = frozenset("nguoi chong vo ck vk ban".split())
NATIONALITIES = frozenset(
    "nhat han trung dai my uc phap duc nga lao campuchia thai singapore malaysia indonesia "
    "philippines canada tay ngoai an".split()
)
# … and the second word of those named in two ("người Hàn Quốc"): one nationality, not a word
# the question asks about
_NATIONALITY_ENDS = frozenset({("han", "quoc"), ("trung", "quoc"), ("nhat", "ban"),
                               ("dai", "loan"), ("thai", "lan"), ("an", "do")})

# Telex input left in words when the keyboard was off: "Nguyeenx" → "nguyen".
_TELEX_DOUBLE = re.compile(r"aa|ee|oo|dd")
_TELEX_HOOK = re.compile(r"(?<=[aou])w")


def typing_variants(token: str) -> list[str]:
    """Readings of a mistyped folded token, most likely first.

    Telex keystrokes left in ("hoon" → "hon", "nguyeenx" → "nguyen"), a key held too long
    ("khauu" → "khau"), and the "n" dropped from a final "ng"/"nh" ("đăg" → "dang").
    """
    base = _TELEX_HOOK.sub("", _TELEX_DOUBLE.sub(lambda m: m.group(0)[0], token))
    out = [base] if base != token else []
    if len(token) > 2 and token[-1] == token[-2]:
        out.append(token[:-1])
    if len(base) > 2 and base[-1] in "sfrxj" and any(v in base[:-1] for v in "aeiouy"):
        out.append(base[:-1])
    if len(token) > 1 and token[-1] in "gh" and token[-2] in "aeiouy":
        out.append(f"{token[:-1]}n{token[-1]}")
    return out


_SYLLABLE = re.compile(
    r"(?:ngh|ng|nh|ch|gh|gi|kh|ph|qu|th|tr|[bcdghklmnprstvx])?"
    r"(?:[aeiouy]{1,3})"
    r"(?:ng|nh|ch|[cmnpt]|[iouy])?"
)


def is_syllable(token: str) -> bool:
    """Whether a folded token has the shape of one Vietnamese syllable ("tiet" yes, "sinhh" no)."""
    return _SYLLABLE.fullmatch(token) is not None


def expand(tokens: Iterable[str]) -> list[str]:
    """Expand abbreviations and chat shorthand, using the previous word for ambiguous ones."""
    out: list[str] = []
    tokens = list(tokens)
    skip = False
    for i, token in enumerate(tokens):
        if skip:
            skip = False
            continue
        previous = out[-1] if out else ""
        following = tokens[i + 1] if i + 1 < len(tokens) else ""
        age = _AGE.fullmatch(token)
        replacement = (_CONTEXT.get((previous, token)) or _BEFORE.get((token, following))
                       or ABBREVIATIONS.get(token) or (f"{age[1]} tuoi" if age else None))
        out.extend((replacement or token).split())
        if previous in _PEOPLE and token in NATIONALITIES:
            out.extend(("nuoc", "ngoai"))
            skip = (token, following) in _NATIONALITY_ENDS
    return out


def tokenize(text: str) -> list[str]:
    """Folded, expanded tokens of ``text`` (no stop-word removal, no spelling correction)."""
    return expand(_TOKEN.findall(fold(text)))


def bigrams(tokens: list[str]) -> list[str]:
    """Adjacent token pairs joined by '_' ("khai", "sinh" → "khai_sinh")."""
    return [f"{a}_{b}" for a, b in itertools.pairwise(tokens)]


# English words citizens use, read as the Vietnamese words the knowledge base is written in.
# Longest phrases are tried first; words not listed stay as they are.
ENGLISH_TERMS: dict[str, str] = {
    "register": "dang ky",
    "registration": "dang ky",
    "registering": "dang ky",
    "registered": "dang ky",
    "birth certificate": "giay khai sinh",
    "birth": "khai sinh",
    "born": "khai sinh",
    "newborn": "khai sinh",
    "baby": "khai sinh",
    "death certificate": "khai tu",
    "death": "khai tu",
    "died": "khai tu",
    "dead": "khai tu",
    "passed away": "khai tu",
    "marriage": "ket hon",
    "married": "ket hon",
    "married to": "da ket hon voi",
    "am married": "da ket hon",
    "are married": "da ket hon",
    "is married": "da ket hon",
    "m married": "da ket hon",
    "got married": "da ket hon",
    "marry": "ket hon",
    "wedding": "ket hon",
    "single status": "tinh trang hon nhan",
    "marital status": "tinh trang hon nhan",
    "unmarried": "doc than",
    "single": "doc than",
    "foreigner": "nguoi nuoc ngoai",
    "japanese": "nuoc ngoai",
    "korean": "nuoc ngoai",
    "chinese": "nuoc ngoai",
    "american": "nuoc ngoai",
    "australian": "nuoc ngoai",
    "french": "nuoc ngoai",
    "german": "nuoc ngoai",
    "taiwanese": "nuoc ngoai",
    "british": "nuoc ngoai",
    "foreign": "nuoc ngoai",
    "paternity": "nhan cha con",
    "recognise": "nhan",
    "recognize": "nhan",
    "guardian": "giam ho",
    "guardianship": "giam ho",
    "adopt": "nhan con nuoi",
    "adoption": "nhan con nuoi",
    "certified copy": "chung thuc ban sao",
    "certify": "chung thuc",
    "copies": "ban sao",
    "copy": "ban sao",
    "signature": "chu ky",
    "will": "di chuc",
    "inheritance": "di san thua ke",
    "inherit": "thua ke",
    "split": "phan chia",
    "refuse": "tu choi",
    "permanent residence": "thuong tru",
    "permanent resident": "thuong tru",
    "temporary resident": "tam tru",
    "diploma": "bang",
    "son": "con",
    "daughter": "con",
    "hospital": "benh vien",
    "certified copies": "chung thuc ban sao",
    "certified": "chung thuc",
    "degree": "bang",
    "worn out": "cap doi",
    "worn": "cap doi",
    "chip": "the can cuoc",
    "engaged": "ket hon",
    "fiance": "ket hon",
    "fiancee": "ket hon",
    "temporary residence": "tam tru",
    "temporary absence": "tam vang",
    "residence": "cu tru",
    "id card": "the can cuoc",
    "identity card": "the can cuoc",
    "citizen id": "can cuoc",
    "citizen id card": "the can cuoc",
    "citizen identity card": "the can cuoc",
    "lost": "mat cap lai",
    "replacement": "cap lai",
    "replace": "cap lai",
    "renew": "cap doi",
    "vneid": "dinh danh dien tu",
    "motorbike": "xe",
    "motorcycle": "xe",
    "vehicle": "xe",
    "number plate": "bien so",
    "license plate": "bien so",
    "household business": "ho kinh doanh",
    "shop": "ho kinh doanh",
    "business": "kinh doanh",
    "red book": "so do",
    "land use": "quyen su dung dat",
    "land": "dat",
    "dispute": "tranh chap",
    "building permit": "giay phep xay dung",
    "construction permit": "giay phep xay dung",
    "build": "xay dung",
    "renovate": "sua chua cai tao",
    "repair": "sua chua",
    "social housing": "nha o xa hoi",
    "poor household": "ho ngheo",
    "near poor": "can ngheo",
    "poverty": "ngheo",
    "disability certificate": "giay xac nhan khuyet tat",
    "disability": "khuyet tat",
    "disabled": "khuyet tat",
    "allowance": "tro cap",
    "benefit": "tro cap",
    "funeral": "mai tang",
    "burial": "mai tang",
    "planning": "quy hoach",
    "first time": "lan dau",
    "land use right": "quyen su dung dat",
    "certificate": "giay",
}
_ENGLISH_LONGEST = max(len(k.split()) for k in ENGLISH_TERMS)


def translate_english(tokens: list[str]) -> list[str]:
    """Replace English words and phrases by their Vietnamese (folded) equivalents."""
    out: list[str] = []
    i = 0
    while i < len(tokens):
        for size in range(_ENGLISH_LONGEST, 0, -1):
            phrase = " ".join(tokens[i : i + size])
            if size <= len(tokens) - i and phrase in ENGLISH_TERMS:
                out.extend(ENGLISH_TERMS[phrase].split())
                i += size
                break
        else:
            out.append(tokens[i])
            i += 1
    return out
