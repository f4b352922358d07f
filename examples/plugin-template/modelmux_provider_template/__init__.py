"""A template ModelMux provider plugin."""
