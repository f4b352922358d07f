"""ModelMux tool plugin: OpenAI's ``file_search`` over vector stores built from uploaded files."""
