"""Loading the bundled knowledge base (TOML files) with clear errors for bad files."""

from __future__ import annotations

import tomllib
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from knowledge.schema import Commune, Faq, Outside, OutsideTopic, Procedure

BUNDLED_DIR = Path(__file__).resolve().parent
DEFAULT_COMMUNE = "hat-mon"

ModelT = TypeVar("ModelT", bound=BaseModel)


class KnowledgeError(ValueError):
    """A knowledge file that cannot be used; the message names the file, field and reason."""


@dataclass(frozen=True)
class KnowledgeBase:
    """Everything the assistant may say: procedures by code, FAQ entries, the commune."""

    procedures: dict[str, Procedure]
    faqs: list[Faq]
    commune: Commune
    outside: list[OutsideTopic] = field(default_factory=list)
    # Codes that came from the bundled files (the rest were imported from portal exports).
    bundled_codes: frozenset[str] = field(default_factory=frozenset)


def _where(loc: tuple[int | str, ...]) -> str:
    """Render a pydantic error location as ``documents[2].name``."""
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(file)"


def validate(model: type[ModelT], data: dict[str, Any], source: str) -> ModelT:
    """Validate ``data`` as ``model``, naming the first bad field in the error."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        raise KnowledgeError(f"{source}: {_where(first['loc'])}: {first['msg']}") from None


def read_toml(path: Path) -> dict[str, Any]:
    """Parse one TOML file, turning syntax and encoding errors into ``KnowledgeError``."""
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise KnowledgeError(f"{path}: (file): not UTF-8 text") from None
    except tomllib.TOMLDecodeError as exc:
        raise KnowledgeError(f"{path}: (file): invalid TOML: {exc}") from None


def load_procedure(path: Path) -> Procedure:
    """Load and validate one procedure file; its name must be its national code."""
    entry = validate(Procedure, read_toml(path), str(path))
    if path.stem != entry.code:
        raise KnowledgeError(f"{path}: code: '{entry.code}' does not match the file name")
    return entry


def load_procedures(directory: Path) -> dict[str, Procedure]:
    """Load every ``*.toml`` procedure in ``directory``, keyed by national code."""
    return {p.code: p for p in map(load_procedure, sorted(directory.glob("*.toml")))}


def load_faqs(directory: Path) -> list[Faq]:
    """Load every FAQ file in ``directory``."""
    faqs = [validate(Faq, read_toml(p), str(p)) for p in sorted(directory.glob("*.toml"))]
    ids = [f.id for f in faqs]
    duplicate = next((i for i in ids if ids.count(i) > 1), None)
    if duplicate:
        raise KnowledgeError(f"{directory}: id: '{duplicate}' is used by two FAQ files")
    return faqs


def profile_path(slug: str, directory: Path | None, suffix: str = ".toml") -> Path:
    """Where a commune's profile (or its ``.days.toml``) is: in ``directory`` (an operator's
    folder) when it is there, else among the bundled profiles."""
    given = directory / f"{slug}{suffix}" if directory else None
    return given if given and given.exists() else BUNDLED_DIR / "communes" / f"{slug}{suffix}"


def load_commune(slug: str = DEFAULT_COMMUNE, directory: Path | None = None) -> Commune:
    """Load a commune profile by slug, from ``directory`` or the bundled ones."""
    path = profile_path(slug, directory)
    if not path.exists():
        where = f"{directory} or {path.parent}" if directory else str(path.parent)
        raise KnowledgeError(f"{where}: (file): no profile for commune '{slug}' "
                             f"({slug}.toml)")
    return validate(Commune, read_toml(path), str(path))


def load_knowledge(
    *,
    imported: Iterable[Procedure] = (),
    commune: str = DEFAULT_COMMUNE,
    directory: Path = BUNDLED_DIR,
    profiles: Path | None = None,
) -> KnowledgeBase:
    """Load the bundled base, adding imported entries; a bundled entry wins on the same code.
    The commune's profile comes from ``profiles`` (an operator's folder) or the bundled ones."""
    bundled = load_procedures(directory / "procedures")
    merged = {p.code: p for p in imported}
    merged.update(bundled)
    faqs = load_faqs(directory / "faq")
    for faq in faqs:
        if faq.procedure and faq.procedure not in bundled:
            raise KnowledgeError(f"{directory / 'faq' / faq.id}.toml: procedure: "
                                 f"'{faq.procedure}' is no bundled procedure")
    return KnowledgeBase(
        procedures=merged,
        faqs=faqs,
        commune=load_commune(commune, profiles or directory / "communes"),
        outside=validate(Outside, read_toml(directory / "outside.toml"),
                         str(directory / "outside.toml")).topics,
        bundled_codes=frozenset(bundled),
    )
