"""The CRM data: the contract (schemas), reading, validation and the synthetic generator."""
