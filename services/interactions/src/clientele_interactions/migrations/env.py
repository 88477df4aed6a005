from clientele_interactions.tables import metadata
from clientele_shared.db import run_env

run_env(metadata)
