"""Names for the synthetic CRM: accounts, deals and reps, as a CRM shows them.

Deterministic functions of the ids (no random draws), so adding names leaves every other
generated value unchanged. Some names carry non-ASCII letters ("Jürgen Müller", "Société
Øresund") on purpose: exports must keep them readable in Excel and in file names.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

_STEMS = ("Nord", "Blue", "Alt", "Sol", "Vega", "Kron", "Pine", "Mar", "Terra", "Lumi",
          "Arc", "Bright", "Cedar", "Delta", "Ember", "Fjord", "Grant", "Helio", "Iris",
          "Juno", "Kite", "Loom", "Øresund")  # fmt: skip
_TAILS = ("wind", "stone", "field", "bridge", "works", "line", "gate", "port", "mark",
          "wave", "crest", "haven", "forge", "point", "vale", "ridge", "tech", "sys",
          "logic")  # fmt: skip
_FORMS = ("Ltd", "GmbH", "Inc", "AB", "SAS", "BV", "Oy", "SpA", "Société")
_FIRST = ("Anna", "Jürgen", "Maria", "Liam", "Zoë", "Søren", "Amélie", "Noah", "Aiko",
          "Mateo", "Ingrid", "Tomás", "Priya", "Olu", "Chloé", "Lukas", "Sofia", "Björn",
          "Yara", "Émile", "Hana", "Ravi", "Nora", "Iñigo")  # fmt: skip
_LAST = ("Müller", "Dubois", "Nielsen", "García", "Rossi", "Kowalski", "Tanaka", "Okafor",
         "Lindqvist", "Novák", "Smith", "Fernández", "Jansen", "Koç", "Svensson", "Moreau",
         "Brennan", "Virtanen", "Costa", "Weiß", "Ahmed")  # fmt: skip


def _number(ids: pd.Series) -> np.ndarray:
    """The digits of ids like ``A000123`` as integers (0 when there are none)."""
    digits = ids.astype("str").str.extract(r"(\d+)", expand=False).fillna("0")
    return digits.astype(np.int64).to_numpy()


def account_names(account_ids: pd.Series) -> pd.Series:
    """``Nordwind GmbH``-like names, distinct for the first 23 x 19 accounts."""
    n = _number(account_ids)
    stem = np.asarray(_STEMS, dtype=object)[n % len(_STEMS)]
    tail = np.asarray(_TAILS, dtype=object)[(n // len(_STEMS)) % len(_TAILS)]
    form = np.asarray(_FORMS, dtype=object)[n % len(_FORMS)]
    names = stem + tail + " " + form
    return pd.Series(np.where(account_ids.isna(), None, names), dtype="str")


def owner_names(owner_ids: pd.Series) -> pd.Series:
    """A first and last name per rep id (the same id always gets the same name)."""
    n = _number(owner_ids)
    first = np.asarray(_FIRST, dtype=object)[n % len(_FIRST)]
    last = np.asarray(_LAST, dtype=object)[(n * 5 + n // len(_FIRST)) % len(_LAST)]
    return pd.Series(np.where(owner_ids.isna(), None, first + " " + last), dtype="str")


def deal_names(deals: pd.DataFrame, accounts: pd.DataFrame) -> pd.Series:
    """``<account name> – <product>`` (``expansion`` deals say so); without an account,
    the deal id stands in for it."""
    named = accounts.set_index(accounts["account_id"].astype("str"))["name"]
    who = deals["account_id"].astype("str").map(named)
    who = who.where(who.notna(), deals["deal_id"].astype("str"))
    product = deals["product"].astype("str").str.replace("_", " ").fillna("deal")
    kind = np.where(deals.get("deal_type", pd.Series("", index=deals.index)).astype("str")
                    == "expansion", " expansion", "")  # fmt: skip
    return pd.Series(who.to_numpy() + " – " + product.to_numpy() + kind, dtype="str")


def with_names(accounts: pd.DataFrame, deals: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The two tables with their contract name columns, each after its id column."""
    accounts = accounts.copy()
    accounts.insert(1, "name", account_names(accounts["account_id"]))
    deals = deals.copy()
    deals.insert(1, "name", deal_names(deals, accounts))
    deals.insert(deals.columns.get_loc("owner_id") + 1, "owner_name",
                 owner_names(deals["owner_id"]))  # fmt: skip
    return accounts, deals
