"""The study page in a real headless browser (tests/test_browser.py's chromium driver): the curves, the
crossovers in words and the cells linking to their jobs, with no console error."""

from __future__ import annotations


from tests.test_browser import browser, check_page  # noqa: F401 (the browser fixture)
from tests.test_studies import SMALL, embedded, wait_study  # noqa: F401 (the module's service fixture)


def test_the_study_page_shows_curves_crossovers_and_cells(browser, embedded):  # noqa: F811
    study_id = embedded.client.post("/studies", json=SMALL).json()["study_id"]
    body = wait_study(embedded, study_id)
    check_page(browser, embedded, f"/ui/studies/{study_id}", "document.querySelectorAll('#crossovers li').length > 0 && document.getElementById('curves').complete")
    assert browser.evaluate("document.getElementById('curves').naturalWidth") > 0  # the SVG loaded
    texts = browser.evaluate("[...document.querySelectorAll('#crossovers li')].map(li => li.textContent)")
    assert texts == [pair["text"] for pair in body["answers"][0]["crossovers"]]
    links = browser.evaluate("[...document.querySelectorAll('main a')].map(a => a.getAttribute('href'))")
    assert {f"/ui/jobs/{cell['job_id']}" for cell in body["cell_list"]} <= set(links)
    check_page(browser, embedded, "/ui/studies", f"document.querySelector('a[href=\"/ui/studies/{study_id}\"]') !== null")
