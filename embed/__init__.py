"""Embed: the public endpoints supporters' pages call to show a random approved fragment."""
