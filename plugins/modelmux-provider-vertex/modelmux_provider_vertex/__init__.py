"""Claude on Vertex AI for ModelMux."""
