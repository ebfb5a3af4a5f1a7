"""Serving: scoring the open pipeline, exports, the revenue forecast and funnel reports."""
