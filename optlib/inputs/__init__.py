"""What comes in: models (zoo, safe loading, fingerprints), datasets and archives."""
