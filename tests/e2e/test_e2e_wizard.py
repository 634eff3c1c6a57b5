"""End to end in a real browser: the wizard's answers, its recommendation on the drawn tree, and the
button that pre-selects the schemes on Optimize, where they run for real and come back as figures.

Run with ``.venv/bin/python -m pytest tests/e2e -m e2e -k wizard``. The screenshot goes to
assets/screenshots/wizard.png (the README shows it).
"""

import re

import pytest
from playwright.sync_api import expect
from waits import settle

pytestmark = pytest.mark.e2e

SCHEME_LABEL = re.compile(r"\((\w+)\)\s*$")
ACCENT = "#ff6f00"  # the theme's primary colour: the path through the tree


def open_page(page, name, heading):
    """Click a page in the sidebar navigation, once the page shown has finished its run, and wait for its title.
    (Once in a whole run, Optimize came back with the default schemes after Compare was left at once: a new
    session's. The assertions below say at which address.)"""
    settle(page)
    page.locator('[data-testid="stSidebarNavLink"]', has_text=name).click()
    page.locator("h1", has_text=heading).wait_for()


def shoot(page, path, height):
    """Screenshot the top of the page at a given window height (Streamlit scrolls inside the page)."""
    page.set_viewport_size({"width": 1440, "height": height})
    settle(page)  # layout and the graph redraw at the new size
    page.locator("h1").first.evaluate("e => e.scrollIntoView({block: 'end'})")
    page.screenshot(path=path)
    page.set_viewport_size({"width": 1440, "height": 1000})


def radio(page, label):
    """One option of the wizard's questions (the tree drawing repeats some of the words)."""
    return page.locator('[data-testid="stRadio"]').get_by_text(label, exact=True)


def checked_schemes(page, settle_s=15):
    """The schemes whose checkbox is ticked on the Optimize page, read from the DOM once it has settled.

    Right after a page switch the previous page's elements (the Wizard's toggle is a checkbox too) can
    still be in the DOM: wait for a scheme's checkbox, then for the same ticks twice, half a second apart.
    """
    page.locator('[data-testid="stCheckbox"]', has_text="(float32)").wait_for()
    previous = None
    for _ in range(settle_s * 2):
        ticked = []
        for box in page.locator('[data-testid="stCheckbox"]').all():
            match = SCHEME_LABEL.search(box.inner_text())
            if match and box.locator('input[type="checkbox"]').is_checked():
                ticked.append(match.group(1))
        if ticked == previous:
            return ticked
        previous = ticked
        page.wait_for_timeout(500)
    return previous


def highlighted(page):
    """The texts of the tree's nodes drawn in the accent colour, and the number of accent edges."""
    tree = page.locator('[data-testid="stGraphVizChart"]')
    tree.locator("g.node").first.wait_for()
    accent = page.locator(f'[stroke="{ACCENT}"]')
    nodes = tree.locator("g.node").filter(has=accent)
    edges = tree.locator("g.edge").filter(has=accent)
    return [" ".join(n.locator("text").all_text_contents()) for n in nodes.all()], edges.count()


def chosen(page, label):
    return page.locator('[data-testid="stRadioOption"]', has_text=label).locator("input").is_checked()


def test_edge_tpu_with_samples_and_accuracy_ends_in_int8_then_qat_and_runs_them(server, page, screenshots):
    url, _ = server
    page.goto(url)
    page.locator("h1", has_text="Shrink").wait_for()
    open_page(page, "Wizard", "Scheme wizard")
    page.get_by_text("Answer the three questions").wait_for()
    assert highlighted(page) == (["Data you have"], 0)  # the start, and no path yet

    radio(page, "Unlabelled representative samples").click()
    radio(page, "Edge TPU").click()
    radio(page, "Accuracy").click()
    # The page streams in; its button is drawn after the last recommendation.
    page.get_by_role("button", name="Run these 3 now").wait_for()

    # The tree asked one more question on this path (with its default), and not the accuracy budget.
    questions = page.locator('[data-testid="stRadio"]')
    assert questions.count() == 4
    assert "sensitive to quantized activations" in questions.nth(3).inner_text()
    ranked = [" ".join(h.inner_text().split()) for h in page.locator('[data-testid="stMain"] h4').all()]
    assert ranked == ["1. Full integer int8 Try first",
                      "2. Quantization-aware training qat Next, if it falls short"]
    assert page.get_by_text("Integer-only hardware needs full integer quantization").is_visible()
    assert page.get_by_text("TensorFlow Lite model optimization guide", exact=False).first.is_visible()
    warnings = page.locator('[data-testid="stAlertContentWarning"]')
    assert warnings.count() == 2
    assert "needs labelled training data" in warnings.nth(1).inner_text()
    assert highlighted(page) == (["Data you have", "Runs on", "Sensitive activations", "int8 · qat"], 3)

    # What will run is said before it runs: the float32 baseline, the two schemes, the setting the target needs.
    assert page.get_by_text("float32 is the baseline every figure is compared with").is_visible()
    runs_line = page.locator('[data-testid="stMain"] [data-testid="stMarkdown"]', has_text=re.compile(r"^Runs "))
    assert "int8_io=true" in runs_line.first.inner_text()
    page.get_by_role("button", name="Run these 3 now").click()
    page.locator("h1", has_text="Optimize").wait_for()
    assert checked_schemes(page) == ["float32", "int8", "qat"]  # running: float32 and the recommended schemes
    page.get_by_text(re.compile(r"of 3 done")).first.wait_for()
    page.get_by_text("3 of 3 schemes finished").wait_for(timeout=240_000)

    # Back on the wizard: the answers are kept, and the figures just measured sit beside each scheme.
    open_page(page, "Wizard", "Scheme wizard")
    page.get_by_text("Try first").wait_for()
    assert all(chosen(page, label) for label in ("Unlabelled representative samples", "Edge TPU", "Accuracy"))
    figures = page.locator('[data-testid="stMetric"]')
    figures.nth(7).wait_for()
    assert figures.count() == 8  # top-1, size, gzip size and latency for int8 and for qat
    # Captions and deltas may come a moment after the tiles: wait for them, then count.
    expect(page.get_by_text(re.compile(r"Run #\d+ · digits_cnn · digits .*changes against float32"))).to_have_count(2)
    expect(page.get_by_text(re.compile(r"^\d+\.\d× smaller$"))).to_have_count(4)  # size and gzip size, twice
    shoot(page, screenshots / "wizard.png", 2480)

    # The selection (the wizard's, plus float32) is still there after more page switches.
    open_page(page, "Compare", "Compare")
    open_page(page, "Optimize", "Optimize")
    ticked = checked_schemes(page)
    if ticked != ["float32", "int8", "qat"]:  # twice in about twenty whole runs: say whether the session was new
        open_page(page, "Wizard", "Scheme wizard")
        page.get_by_text("Answer the three questions").wait_for()
        kept = [label for label in ("Unlabelled representative samples", "Edge TPU", "Accuracy") if chosen(page, label)]
        raise AssertionError(f"Optimize ticked {ticked} at {page.url}; the wizard's answers still chosen: {kept} "
                             "(none: a new session)")
