"""Sales analytics: funnel, time in stage, cycle, contacts, won deals, monitoring, forecast."""
