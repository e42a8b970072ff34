"""Fees a province or one commune sets where the law leaves them to the provincial People's
Council (HĐND tỉnh), laid over the knowledge base.

An operator's folder (``MOTCUA_COMMUNE_PROFILES``) may hold ``province.fees.toml``, the fees of
the province it names, for every commune served in that province, and ``<slug>.fees.toml``, a
commune's own, which wins over the province's for the submission methods it names. Only a fee
the source leaves to the province or does not publish can be set: a fee set nationally is the
law's, and a file that tries to change one is refused at start with its path and the procedure.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path

from pydantic import Field, model_validator

from knowledge.loader import KnowledgeBase, KnowledgeError, profile_path, read_toml, validate
from knowledge.schema import (
    Channel,
    FeeStatus,
    Method,
    NationalCode,
    NonEmpty,
    Procedure,
    Strict,
)
from knowledge.text import fold

log = logging.getLogger(__name__)
PROVINCE_FILE = "province"  # province.fees.toml
LEFT_TO_PROVINCE = (FeeStatus.PROVINCE, FeeStatus.NOT_PUBLISHED)


class FeeSetting(Strict):
    """The fee of one procedure as the province (or the commune) set it."""

    procedure: NationalCode
    # The submission methods it applies to; empty: each whose fee is left to the province.
    channels: list[Channel] = Field(default_factory=list)
    fee_status: FeeStatus  # "amount" (with fee_vnd) or "free"
    fee_vnd: int | None = Field(default=None, ge=0)
    fee_note: str = ""  # conditions, exemptions (e.g. free when registered on time)
    fee_note_en: str = ""
    basis: NonEmpty  # the resolution that sets it: number, article, clause
    basis_en: str = ""
    facts_date: dt.date  # when it was read from the resolution

    @model_validator(mode="after")
    def _amount(self) -> FeeSetting:
        if self.fee_status not in (FeeStatus.AMOUNT, FeeStatus.FREE):
            raise ValueError("a fee set here is an amount or free")
        if (self.fee_status is FeeStatus.AMOUNT) != (self.fee_vnd is not None):
            raise ValueError("fee_vnd goes with fee_status 'amount', and only with it")
        return self


class FeesFile(Strict):
    """``province.fees.toml`` (``province`` names it) or ``<slug>.fees.toml``."""

    province: str = ""  # the province's name as in the communes' profiles
    fees: list[FeeSetting] = Field(default_factory=list)


def _read(path: Path) -> FeesFile | None:
    """The file at ``path``, or None when there is none."""
    if not path.exists():
        return None
    found = validate(FeesFile, read_toml(path), str(path))
    codes = [s.procedure for s in found.fees]
    twice = next((c for c in codes if codes.count(c) > 1), None)
    if twice:
        raise KnowledgeError(f"{path}: fees: {twice} is set twice")
    return found


def _set(method: Method, setting: FeeSetting) -> Method:
    return method.model_copy(update={
        "fee_status": setting.fee_status, "fee_vnd": setting.fee_vnd,
        "fee_note": setting.fee_note, "fee_note_en": setting.fee_note_en,
        "fee_basis": setting.basis, "fee_basis_en": setting.basis_en, "fee_confirmed": True})


def _covers(setting: FeeSetting, method: Method, path: Path, code: str) -> bool:
    """Whether ``setting`` sets ``method``'s fee; a fee set nationally is refused."""
    chosen = method.channel in setting.channels if setting.channels \
        else method.fee_status in LEFT_TO_PROVINCE
    if chosen and method.fee_status not in LEFT_TO_PROVINCE:
        raise KnowledgeError(
            f"{path}: fees: {code} ({method.channel}): its fee is set nationally "
            f"({method.fee_status}); only a fee left to the province can be set")
    return chosen


def set_fees(procedures: Mapping[str, Procedure],
             layers: Sequence[tuple[Path, FeesFile]]) -> dict[str, Procedure]:
    """``procedures`` with the fees of each file set, a later file winning over an earlier one
    for the methods it names (the commune's over the province's). A procedure not loaded (a
    portal catalog not given) is skipped with a warning."""
    out = dict(procedures)
    for path, found in layers:
        for setting in found.fees:
            proc = procedures.get(setting.procedure)
            if proc is None:
                log.warning("%s: fees: %s is not loaded: its fee is not used", path,
                            setting.procedure)
                continue
            covered = [_covers(setting, m, path, proc.code) for m in proc.methods]
            if not any(covered):
                national = ", ".join(sorted({m.fee_status for m in proc.methods}))
                raise KnowledgeError(f"{path}: fees: {proc.code}: its fee is set nationally "
                                     f"({national}); only a fee left to the province can be set")
            methods = [_set(m, setting) if c else m
                       for m, c in zip(out[proc.code].methods, covered, strict=True)]
            out[proc.code] = proc.model_copy(update={"methods": methods})
    return out


def with_fees(kb: KnowledgeBase, directory: Path | None) -> KnowledgeBase:
    """``kb`` (the national fees, its commune's profile) with the fees its province and its
    commune set in ``directory``; ``kb`` itself when they set none."""
    if directory is None:
        return kb
    layers: list[tuple[Path, FeesFile]] = []
    province_path = directory / f"{PROVINCE_FILE}.fees.toml"
    province = _read(province_path)
    if province is not None:
        if not province.province:
            raise KnowledgeError(f"{province_path}: province: the province these fees are for "
                                 "is required")
        if fold(province.province) == fold(kb.commune.province):
            layers.append((province_path, province))
    own_path = profile_path(kb.commune.slug, directory, ".fees.toml")
    own = _read(own_path)
    if own is not None:
        layers.append((own_path, own))
    if not any(found.fees for _, found in layers):
        return kb
    return replace(kb, procedures=set_fees(kb.procedures, layers))
