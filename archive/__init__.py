"""The reader's public face: browse, timelines, diffs, reader views, replay, downloads, Memento."""
