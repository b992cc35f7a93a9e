"""Channel plugins (one file per platform) and the platform sandbox emulators."""
