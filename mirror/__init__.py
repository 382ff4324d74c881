"""Mirror: sources (blocked pages), the fetcher, captures, storage back-ends and the scheduler."""
