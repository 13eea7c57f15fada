"""Data curation: classify and caption prompts, decontamination n-grams and embeddings."""
