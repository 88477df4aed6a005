-- One database per service (each owns its data; ADR 1). Run once, on an empty data volume.
CREATE DATABASE clientele_directory;
CREATE DATABASE clientele_interactions;
CREATE DATABASE clientele_pipeline;
CREATE DATABASE clientele_campaigns;
CREATE DATABASE clientele_notifier;
