"""The reader archive: the public face readers browse, search, verify and take away."""
