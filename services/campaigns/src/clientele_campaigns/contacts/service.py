"""The contacts read model: followed from the directory's persons state topic."""

from __future__ import annotations

from clientele_shared.events.state import ReadModel

from clientele_campaigns.contacts.rules import contact_columns
from clientele_campaigns.tables import mailing_contacts

CONTACTS = ReadModel(mailing_contacts, contact_columns, key="person_id")
"""A person's snapshot replaces the row unless an older one (version, then revision)."""
