"""Model definitions. Each family module imports torch; nothing here is imported until a model is built."""
