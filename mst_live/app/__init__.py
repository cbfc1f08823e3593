"""The application around the library: what the command line runs."""
