"""Constants many test packages share."""

from __future__ import annotations

from crm.schemas import Funnel

#: The funnel of the synthetic CRM (and of params.yaml): five open stages, won, lost.
FUNNEL = Funnel(
    stages=("lead", "qualified", "meeting", "proposal", "negotiation"),
    won_label="won",
    lost_label="lost",
)
