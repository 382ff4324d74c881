"""The reader's public face: browse, search, timelines, replay, downloads."""
