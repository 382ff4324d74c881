"""The reader's public face: browse, search, timelines, diffs, reader views, replay, downloads, Memento, WACZ."""
