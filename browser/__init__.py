"""Browser-grade capture: a page as a real browser sees it.

Chromium (headless, driven by Playwright) loads the page with every request passing through a
recording proxy that writes the WARC; behaviours (wait for quiet, scroll) make lazy content
appear; the rendered DOM and a screenshot are taken at the end. Everything is bounded and every
connection is checked against the same address policy as the HTTP fetcher.

This room knows nothing of mirror/: mirror's pipeline calls it (source → capture).
"""
