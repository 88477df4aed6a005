"""The read models' operations (``clientele_shared.directory_read_models``) over the pipeline's
tables: fold a directory event into whole records and apply them; look clients, persons and
employees up for the deals."""

from __future__ import annotations

from clientele_shared.directory_read_models import DirectoryReadModels

from clientele_pipeline.tables import directory

READ_MODELS = DirectoryReadModels(directory)
organization = READ_MODELS.organization
persons_of = READ_MODELS.persons_of
employee = READ_MODELS.employee
references = READ_MODELS.references
apply_organization = READ_MODELS.apply_organization
apply_person = READ_MODELS.apply_person
apply_employee = READ_MODELS.apply_employee
organization_records = READ_MODELS.organization_records
person_records = READ_MODELS.person_records
employee_records = READ_MODELS.employee_records
