"""The read models' operations (``clientele_shared.directory_read_models``) over the campaigns
service's tables."""

from __future__ import annotations

from clientele_shared.directory_read_models import DirectoryReadModels

from clientele_campaigns.tables import directory

READ_MODELS = DirectoryReadModels(directory)
