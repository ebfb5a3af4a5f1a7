"""Buying companies: firmographics, a hidden fit, and which account each deal belongs to.

An account's ``fit`` is a latent score (logit scale) made of an industry effect, a small
country effect and a hidden part; industry and country are observable, so a model can
learn part of the fit. Accounts differ in how often they buy: about one in eight is a key
account with a much higher propensity, and propensity rises with fit and size. So most
accounts have no deal or one, while key accounts come back again and again (expansion
business: about 40 % of deals are not their account's first).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: Industries, their share of accounts and their effect on fit.
INDUSTRIES = {
    "software": (0.18, 0.45),
    "financial_services": (0.12, 0.15),
    "healthcare": (0.10, -0.10),
    "manufacturing": (0.14, 0.0),
    "retail": (0.10, -0.25),
    "logistics": (0.07, 0.05),
    "education": (0.06, -0.40),
    "media": (0.06, 0.20),
    "energy": (0.05, -0.15),
    "public_sector": (0.05, -0.55),
    "professional_services": (0.07, 0.25),
}
#: Countries, their share of accounts and their effect on fit.
COUNTRIES = {
    "US": (0.38, 0.10),
    "GB": (0.12, 0.05),
    "DE": (0.11, -0.05),
    "FR": (0.08, -0.15),
    "NL": (0.05, 0.10),
    "CA": (0.06, 0.05),
    "AU": (0.05, 0.0),
    "SE": (0.04, 0.10),
    "ES": (0.04, -0.20),
    "IT": (0.03, -0.25),
    "JP": (0.02, -0.35),
    "BR": (0.02, -0.30),
}
#: Accounts per deal: most accounts in a CRM never get a deal (imported prospects).
ACCOUNTS_PER_DEAL = 2.0
#: Key accounts buy far more often (log-mean of their propensity boost).
KEY_ACCOUNT_SHARE, KEY_ACCOUNT_LOG_BOOST = 0.12, 1.8
#: Head count: lognormal with this median and log-sd (heavy right tail).
EMPLOYEES_MEDIAN, EMPLOYEES_SIGMA = 180.0, 1.5
#: Revenue per employee: lognormal with this median and log-sd.
REVENUE_PER_EMPLOYEE, REVENUE_SIGMA = 160_000.0, 0.55
#: Sd of the hidden part of the fit.
FIT_NOISE_SD = 0.6


@dataclass(frozen=True)
class Accounts:
    """Account-level arrays, indexed by account number (0..n-1)."""

    industry: np.ndarray  # int codes into INDUSTRIES
    country: np.ndarray  # int codes into COUNTRIES
    employees: np.ndarray  # float, whole numbers >= 1
    revenue: np.ndarray  # float, rounded to thousands
    fit: np.ndarray  # latent, logit scale
    propensity: np.ndarray  # relative buying frequency (sums to 1)

    def __len__(self) -> int:
        return len(self.fit)


def n_accounts_for(n_deals: int) -> int:
    """How many accounts a CRM with ``n_deals`` deals has (some never buy)."""
    return max(1, round(n_deals * ACCOUNTS_PER_DEAL))


def make_accounts(rng: np.random.Generator, n: int) -> Accounts:
    """Draw ``n`` accounts: firmographics, latent fit and buying propensity."""
    industry = _draw_codes(rng, INDUSTRIES, n)
    country = _draw_codes(rng, COUNTRIES, n)
    employees = np.maximum(1.0, np.round(EMPLOYEES_MEDIAN * rng.lognormal(0.0, EMPLOYEES_SIGMA, n)))
    per_head = REVENUE_PER_EMPLOYEE * rng.lognormal(0.0, REVENUE_SIGMA, n)
    revenue = np.round(employees * per_head, -3)
    ind_effect = np.array([v[1] for v in INDUSTRIES.values()])[industry]
    cty_effect = np.array([v[1] for v in COUNTRIES.values()])[country]
    fit = ind_effect + cty_effect + rng.normal(0.0, FIT_NOISE_SD, n)
    key = rng.random(n) < KEY_ACCOUNT_SHARE
    raw = np.where(key, rng.lognormal(KEY_ACCOUNT_LOG_BOOST, 0.7, n), rng.lognormal(0.0, 0.5, n))
    raw *= np.exp(0.4 * fit) * (employees / EMPLOYEES_MEDIAN) ** 0.15
    return Accounts(industry, country, employees, revenue, fit, raw / raw.sum())


def assign_accounts(rng: np.random.Generator, accounts: Accounts, n_deals: int) -> np.ndarray:
    """The account number of each deal, drawn in proportion to the accounts' propensity."""
    return rng.choice(len(accounts), size=n_deals, p=accounts.propensity)


def account_created_days(
    rng: np.random.Generator, n: int, first_deal: np.ndarray, horizon: float
) -> np.ndarray:
    """When each account entered the CRM, in days since origin.

    Accounts with deals appear a few weeks to months before their first deal (possibly
    before the origin); ``first_deal`` is NaN for accounts without deals, which appear
    uniformly between a year before the origin and the horizon.
    """
    lead_time = rng.exponential(75.0, n)
    no_deal = rng.uniform(-365.0, horizon, n)
    return np.where(np.isnan(first_deal), no_deal, first_deal - lead_time)


def _draw_codes(
    rng: np.random.Generator, table: dict[str, tuple[float, float]], n: int
) -> np.ndarray:
    shares = np.array([v[0] for v in table.values()])
    return rng.choice(len(table), size=n, p=shares / shares.sum())
