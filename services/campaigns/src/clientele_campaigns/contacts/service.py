"""The contacts read models: followed from the directory's persons and organizations state
topics."""

from __future__ import annotations

from clientele_shared.events.state import ReadModel

from clientele_campaigns.contacts.rules import contact_columns, organization_columns
from clientele_campaigns.tables import mailing_contacts, mailing_organizations

CONTACTS = ReadModel(mailing_contacts, contact_columns, key="person_id")
"""A person's snapshot replaces the row unless an older one (version, then revision)."""

PREMISES = ReadModel(mailing_organizations, organization_columns, key="organization_id")
"""An organization's snapshot replaces its postal address and fax unless older."""
