"""The unwanted-counterparty register and the blocked flag it gives records."""
