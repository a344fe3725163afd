"""The special-category rule for free metadata: a subject's metadata keys may not name
race, ethnicity, skin colour, religion, political opinion, health, sexual orientation or
emotion (PRODUCT.md; EU AI Act Art. 5, GDPR Art. 9), however they are spelled.

A key is read after Unicode NFKC (full-width and compatibility forms), lookalike letters
of other scripts mapped to Latin, case folding and accent stripping, with its separators
removed, and compared with the terms in English, French, German, Spanish, Portuguese and
Chinese. A refusal is a ``ProhibitedAttributeError`` naming the term found.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping

from frvs.core.errors import InvalidInputError, ProhibitedAttributeError

# The special categories, in English, French, German, Spanish, Portuguese and Chinese
# (simplified and traditional), written as they read once normalised (``fold_key``:
# NFKC, case-folded, accents stripped, so "religión" -> "religion", "Gesundheit" stays).
# Stems are matched anywhere in the key with its separators removed ("skin-Colour" ->
# "skincolour", "r_a_c_e" -> "race"); short or ambiguous words only as a whole token or
# a run of tokens, so "trace_id", "grace_period" or "skinner_box" stay allowed.
_PROHIBITED_STEMS = (
    # race and ethnicity
    "racial", "rassisch", "ethni", "etni", "volkszugehorigkeit", "abstammung",
    "rassenzugehorig", "herkunft", "ascendenc", "ascendanc", "complexion",
    "种族", "種族", "人种", "人種", "民族", "族裔", "族群",
    # skin colour
    "skincolo", "skintone", "hautfarbe", "hautton", "couleurdepeau", "couleurdelapeau",
    "couleurpeau", "colordepiel", "colorpiel", "tonodepiel", "cordapele", "cordepele",
    "tomdepele", "肤色", "膚色",
    # religion and belief
    "religi", "konfession", "glaube", "bekenntnis", "croyance", "creencia", "crenca",
    "confesion", "confissao", "weltanschauung", "denomination", "church",
    "宗教", "信仰",
    # political opinion
    "politi", "ideolog", "parteizugehorigkeit", "partyaffiliation", "partymembership",
    "parteimitglied", "partido",
    "政治", "政见", "政見", "党派", "黨派", "政党", "政黨",
    # health
    "health", "medical", "medicale", "medico", "medizin", "diagnos", "disabilit", "handicap",
    "gesundheit", "krank", "behinderung", "maladie", "enfermedad", "discapacidad", "doenca",
    "deficiencia", "pregnan", "schwanger", "grossesse", "embaraz", "gravidez",
    "behinder", "discapacit", "medica", "medika", "psychiatr", "psiquiatr", "wheelchair",
    "rollstuhl", "fauteuilroulant", "silladeruedas", "cadeiraderodas", "bloodtype",
    "bloodgroup", "blutgruppe", "groupesanguin", "tiposanguineo", "allerg", "alergi",
    "hivstatus", "diabet", "cancer",
    "健康", "医疗", "醫療", "疾病", "病史", "残疾", "殘疾", "病历", "病歷", "诊断", "診斷",
    "怀孕", "懷孕", "残障", "殘障", "血型",
    # sexual orientation
    "sexualorient", "sexualit", "sexualidad", "sexualpref", "orientationsexuel",
    "orientacionsexual", "orientacaosexual", "sexuelleorient", "sexuelleausricht",
    "homosex", "heterosex", "bisexu", "lesbi", "lgbt",
    "性取向", "性倾向", "性傾向", "同性恋", "同性戀",
    # emotion
    "emotion", "emocion", "emocao", "gefuhl", "gemutszustand", "estadodeanimo", "sentiment",
    "sentimient", "情绪", "情緒", "情感", "心情",
)
_PROHIBITED_TOKENS = frozenset({
    "race", "races", "rasse", "rassen", "raza", "razas", "raca", "racas", "caste", "tribe",
    "skin", "peau", "teint", "piel", "pele",
    "religion", "faith", "creed", "credo", "belief", "beliefs", "culte",
    "partei",
    "illness", "disease", "sante", "salud", "saude", "disabled", "deficiente", "enfermo",
    "enferma", "malade", "doente", "krankheit", "hiv", "aids",
    "orientation", "orientacion", "orientacao", "orientierung", "gay", "queer",
    "emotion", "mood", "moods", "affect", "feeling", "feelings", "humeur", "humor", "stimmung",
    "laune", "animo",
})
_LONGEST_TOKEN = max(len(t) for t in _PROHIBITED_TOKENS)
_INNOCENT = ("demotion",)
"""Words that contain a stem by accident; removed before the stems are looked for (a
token spelling a term is still caught: "d_emotion")."""

# Letters of other scripts that look like Latin ones ("rаce" with a Cyrillic "а").
_LOOKALIKES = str.maketrans({
    "а": "a", "в": "b", "с": "c", "е": "e", "ё": "e", "һ": "h", "і": "i", "ј": "j", "к": "k",
    "м": "m", "н": "h", "о": "o", "р": "p", "ѕ": "s", "т": "t", "у": "y", "х": "x", "ԁ": "d",
    "α": "a", "β": "b", "ε": "e", "η": "n", "ι": "i", "κ": "k", "ν": "v", "ο": "o", "ρ": "p",
    "τ": "t", "υ": "u", "χ": "x", "ı": "i",
    # IPA and other Latin-like letters NFKC leaves alone.
    "ɑ": "a", "ɡ": "g", "ɾ": "r", "ʀ": "r", "ɩ": "i", "ɪ": "i", "ʟ": "l", "ӏ": "l",
    "ɛ": "e", "ɔ": "o", "ʏ": "y", "ɴ": "n", "ʜ": "h", "ʙ": "b",
})


def fold_key(key: str) -> str:
    """A metadata key as the special-category check reads it: Unicode NFKC (full-width
    and compatibility forms), lookalike letters of other scripts as Latin, case-folded,
    accents stripped ("Religión" -> "religion", "ｅｔｈｎｉｃｉｔｙ" -> "ethnicity")."""
    camel_split = re.sub(r"([a-z])([A-Z])", r"\1 \2", unicodedata.normalize("NFKC", key))
    folded = camel_split.translate(_LOOKALIKES).casefold().translate(_LOOKALIKES)
    decomposed = unicodedata.normalize("NFKD", folded)
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def _tokens(folded: str) -> list[str]:
    """The runs of letters and digits of a folded key; anything else separates them."""
    return [t for t in re.split(r"[\W_]+", folded) if t]


def prohibited_term(key: str) -> str | None:
    """The special category a metadata key names (the term found), or None."""
    tokens = _tokens(fold_key(key))
    joined = "".join(tokens)
    for word in _INNOCENT:
        joined = joined.replace(word, " ")
    named = next((s for s in _PROHIBITED_STEMS if s in joined), None)
    named = named or next((p for p in joined.split() if p in _PROHIBITED_TOKENS), None)
    if named is not None:
        return named
    # Whole tokens, and runs of tokens that spell one ("r_a_c_e", "s-k-i-n").
    for i in range(len(tokens)):
        run = ""
        for token in tokens[i:]:
            run += token
            if len(run) > _LONGEST_TOKEN:
                break
            if run in _PROHIBITED_TOKENS:
                return run
    return None


def check_metadata(metadata: Mapping[str, str]) -> dict[str, str]:
    """A validated copy of ``metadata``; a key naming a special category is refused,
    however it is spelled (``prohibited_term``).

    PRODUCT.md: FRVS never records race, ethnicity, skin colour, religion, political
    opinion, health, sexual orientation or emotion, not even as free metadata.
    """
    checked: dict[str, str] = {}
    for key, value in metadata.items():
        if not isinstance(key, str) or not key.strip():
            raise InvalidInputError("metadata keys must be non-empty strings")
        named = prohibited_term(key)
        if named is not None:
            raise ProhibitedAttributeError(
                f"metadata key {key!r} names a special category of personal data ({named!r}); "
                "FRVS never stores race, ethnicity, skin colour, religion, political opinion, "
                "health, sexual orientation or emotion"
            )
        checked[key.strip()] = str(value)
    return checked
