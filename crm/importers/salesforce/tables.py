"""The Salesforce exports: file names, column labels and the default name maps."""

from __future__ import annotations

from crm.schemas import LOST, WON

FILES = {
    "opportunity": ("Opportunity", "Opportunities"),
    "history": ("OpportunityHistory", "OpportunityHistories"),
    "field_history": ("OpportunityFieldHistory", "OpportunityFieldHistories"),
    "account": ("Account", "Accounts"),
    "task": ("Task", "Tasks"),
    "event": ("Event", "Events"),
    "contact_role": ("OpportunityContactRole", "OpportunityContactRoles"),
}
#: Report labels -> API names (compared after squashing case, spaces and punctuation).
ALIASES = {
    "Account ID": "AccountId",
    "Owner ID": "OwnerId",
    "Opportunity Owner ID": "OwnerId",
    "Opportunity Owner": "OwnerName",
    "Opportunity Name": "Name",
    "Account Name": "AccountName",
    "Created Date": "CreatedDate",
    "Stage": "StageName",
    "Close Date": "CloseDate",
    "Closed": "IsClosed",
    "Won": "IsWon",
    "Lead Source": "LeadSource",
    "Opportunity Type": "Type",
    "Deleted": "IsDeleted",
    "Opportunity Currency": "CurrencyIsoCode",
    "Currency": "CurrencyIsoCode",
    "Master Record ID": "MasterRecordId",
    "Campaign ID": "CampaignId",
    "Opportunity": "OpportunityId",
    "Opportunity ID": "OpportunityId",
    "Field / Event": "Field",
    "Old Value": "OldValue",
    "New Value": "NewValue",
    "Edit Date": "CreatedDate",
    "Last Modified": "CreatedDate",
    "Employees": "NumberOfEmployees",
    "Annual Revenue": "AnnualRevenue",
    "Billing Country": "BillingCountry",
    "Related To ID": "WhatId",
    "Name ID": "WhoId",
    "Contact ID": "ContactId",
    "Due Date": "ActivityDate",
    "Date": "ActivityDate",
    "Task Subtype": "TaskSubtype",
    "Call Type": "CallType",
    "Completed Date/Time": "CompletedDateTime",
    "Start": "StartDateTime",
    "Start Date/Time": "StartDateTime",
    "Event Subtype": "EventSubtype",
    "Role": "Role",
}
#: Labels that mean the record's own id in that object's export.
OWN_ID = {
    "opportunity": "Opportunity ID",
    "account": "Account ID",
    "task": "Activity ID",
    "event": "Activity ID",
}
#: The standard StageName picklist onto the default funnel (lead ... negotiation).
DEFAULT_STAGES = {
    "Prospecting": "lead",
    "Qualification": "qualified",
    "Needs Analysis": "qualified",
    "Value Proposition": "meeting",
    "Id. Decision Makers": "meeting",
    "Perception Analysis": "meeting",
    "Proposal/Price Quote": "proposal",
    "Negotiation/Review": "negotiation",
    "Closed Won": WON,
    "Closed Lost": LOST,
}
DEFAULT_CHANNELS = {
    "Email": "email",
    "ListEmail": "email",
    "Call": "call",
    "LinkedIn": "social",
    "Meeting": "meeting",
    "Demo": "demo",
    "Webinar": "webinar",
    "Event": "event",
}
DEFAULT_ROLES = {
    "Decision Maker": "decision_maker",
    "Economic Buyer": "decision_maker",
    "Economic Decision Maker": "decision_maker",
    "Executive Sponsor": "champion",
    "Influencer": "influencer",
    "Evaluator": "influencer",
    "Technical Buyer": "influencer",
    "Business User": "user",
}
#: Opportunity fields kept as attributes besides custom ``__c`` fields.
KEEP_FIELDS = {"Type": "type", "CampaignId": "campaign_id"}
USED_FIELDS = {
    "Id",
    "Name",
    "AccountId",
    "AccountName",
    "OwnerId",
    "OwnerName",
    "CreatedDate",
    "Amount",
    "StageName",
    "CloseDate",
    "IsClosed",
    "IsWon",
    "LeadSource",
    "IsDeleted",
    "MasterRecordId",
    "CurrencyIsoCode",
}
