"""The HubSpot exports: the column labels of each kind of file, the default name maps."""

from __future__ import annotations

import re

from crm.schemas import LOST, WON

DEAL_COLUMNS = {
    "deal_id": ("Record ID", "Deal ID", "hs_object_id", "dealId"),
    "created": ("Create Date", "Created Date", "createdate"),
    "close": ("Close Date", "closedate"),
    "stage": ("Deal Stage", "dealstage"),
    "amount_home": ("Amount in company currency", "amount_in_home_currency"),
    "amount": ("Amount", "amount"),
    "currency": ("Currency", "deal_currency_code"),
    "pipeline": ("Pipeline", "pipeline"),
    "owner": ("Deal owner", "Deal Owner", "hubspot_owner_id", "Owner"),
    "type": ("Deal Type", "dealtype"),
    "source": (
        "Original Source Type",
        "Original Source",
        "Deal source",
        "hs_analytics_source",
        "Original Traffic Source",
    ),
    "name": ("Deal Name", "dealname"),
    "is_won": ("Is Closed Won", "hs_is_closed_won", "Is closed won"),
    "is_closed": ("Is Deal Closed?", "Is Closed", "hs_is_closed", "Is Deal Closed"),
    "archived": ("Archived", "Is Deleted", "archived"),
    "merged": ("Merged Deal IDs", "hs_merged_object_ids"),
    "company_id": (
        "Associated Company IDs (Primary)",
        "Associated Company IDs",
        "Associated Company ID",
        "Company ID",
        "associatedcompanyid",
    ),
    "company_name": (
        "Associated Company (Primary)",
        "Associated Company",
        "Company name",
        "Company",
    ),
}
COMPANY_COLUMNS = {
    "id": ("Record ID", "Company ID", "hs_object_id", "companyId"),
    "name": ("Company name", "Name", "Company Name"),
    "industry": ("Industry",),
    "employees": ("Number of Employees", "numberofemployees", "Employees"),
    "revenue": ("Annual Revenue", "annualrevenue"),
    "country": ("Country/Region", "Country", "country"),
    "created": ("Create Date", "createdate", "Created Date"),
    "merged": ("Merged Company IDs", "hs_merged_object_ids"),
}
ENGAGEMENT_COLUMNS = {
    "id": ("Record ID", "Activity ID", "Engagement ID", "hs_object_id", "ID"),
    "time": (
        "Activity date",
        "Activity Date",
        "Timestamp",
        "hs_timestamp",
        "Meeting start time",
        "Call date",
        "Email send date",
        "Create date",
        "Create Date",
        "Created at",
    ),
    "deal": (
        "Associated Deal IDs",
        "Associated Deal ID",
        "Deal IDs",
        "Deal ID",
        "Associated Deals",
        "Associated Deal",
    ),
    "company": (
        "Associated Company IDs",
        "Associated Company ID",
        "Company ID",
        "Associated Company",
    ),
    "contact": (
        "Associated Contact IDs",
        "Associated Contact ID",
        "Contact ID",
        "Associated Contact",
    ),
    "type": (
        "Activity type",
        "Activity Type",
        "Engagement type",
        "Engagement Type",
        "Type",
        "hs_engagement_type",
    ),
    "direction": (
        "Call direction",
        "Email direction",
        "Direction",
        "hs_call_direction",
        "hs_email_direction",
    ),
}
STAGE_DATE = re.compile(r"^(?:date entered|hs_date_entered_)\s*[\"“']?(.+?)[\"”']?\s*$", re.I)
PIPELINE_SUFFIX = re.compile(r"\s*\([^()]*\)\s*$")
#: HubSpot's default sales pipeline onto the default funnel (labels and internal ids).
DEFAULT_STAGES = {
    "Appointment Scheduled": "lead",
    "appointmentscheduled": "lead",
    "Qualified To Buy": "qualified",
    "qualifiedtobuy": "qualified",
    "Presentation Scheduled": "meeting",
    "presentationscheduled": "meeting",
    "Decision Maker Bought-In": "proposal",
    "decisionmakerboughtin": "proposal",
    "Contract Sent": "negotiation",
    "contractsent": "negotiation",
    "Closed Won": WON,
    "closedwon": WON,
    "Closed Lost": LOST,
    "closedlost": LOST,
}
DEFAULT_CHANNELS = {
    "CALL": "call",
    "EMAIL": "email",
    "INCOMING_EMAIL": "email",
    "FORWARDED_EMAIL": "email",
    "MEETING": "meeting",
    "NOTE": "note",
    "TASK": None,
    "calls": "call",
    "emails": "email",
    "meetings": "meeting",
    "notes": "note",
    "tasks": None,
}
FILE_KINDS = ("calls", "emails", "meetings", "notes", "tasks")
EMAIL_DIRECTION = {"incoming_email": "inbound", "email": "outbound", "forwarded_email": "outbound"}
