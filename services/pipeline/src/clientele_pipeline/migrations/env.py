from clientele_shared.db import run_env

from clientele_pipeline.store import metadata

run_env(metadata)
