"""Made for the room: at 1024×768 (a projector) and at 1920×1080, Table 1's comparison fits and no text lies on
other text. Each page is opened once, at 1024×768, looked at, then resized to 1920×1080 and looked at again. At
1024 the main pages are photographed for the README (assets/screenshots/<page>-1024.png).

The store holds three models (the ``three_models`` fixture: the built-in CNN, an uploaded model and an untrained
MobileNetV2), written as the sweep's driver writes them.
"""

import pytest
from test_e2e_many_models import open_compare_with_every_model, overlaps
from waits import settle

pytestmark = pytest.mark.e2e

VIEWPORTS = {"1024x768": {"width": 1024, "height": 768}, "1920x1080": {"width": 1920, "height": 1080}}
ROOM = VIEWPORTS["1024x768"]  # the projector: the screenshots are taken at its width
# What a page shows once its work is done, where that takes longer than the page's run (Model & data loads the
# model in a process of its own): (selector, how many) to wait for before looking and photographing.
READY = {"model_data": ('[data-testid="stMetricValue"]', 8)}
# Photographed at 1024 for the README: not Present (test_e2e_many_models takes present.png at 1024) nor Layer
# insight (this store's .tflite files are stand-ins, which its weights section says it cannot read).
PHOTOGRAPHED = ("", "model_data", "optimize", "compare", "wizard", "export")
PAGES = {"": "Shrink", "model_data": "Model & data", "optimize": "Optimize", "compare": "Compare",
         "present": "Present", "wizard": "Scheme wizard", "insight": "Layer insight", "export": "Export"}

# Every line of text in the main column (HTML text nodes, one box per line) and every Plotly text (ticks,
# legend, annotations, titles): [{text, x, y, width, height, chart}] where chart says which chart (-1: HTML).
TEXT_BOXES = """() => {
    const main = document.querySelector('[data-testid="stMain"]');
    const boxes = [];
    let count = 0;  // one number per text node: the lines of one wrapped text are not a collision
    const walker = document.createTreeWalker(main, NodeFilter.SHOW_TEXT);
    for (let node = walker.nextNode(); node; node = walker.nextNode()) {
        const parent = node.parentElement;
        if (!node.textContent.trim() || parent.closest('svg, details:not([open]), [data-testid="stTooltipContent"]')
            || parent.offsetParent === null) continue;
        const range = document.createRange(); range.selectNodeContents(node);
        for (const r of range.getClientRects()) if (r.width > 1 && r.height > 1)
            boxes.push({text: node.textContent.trim().slice(0, 50), x: r.x, y: r.y, width: r.width, height: r.height,
                        chart: -1, node: count});
        count += 1;
    }
    document.querySelectorAll('[data-testid="stPlotlyChart"]').forEach((chart, index) =>
        chart.querySelectorAll('svg text').forEach(t => { const r = t.getBoundingClientRect();
            if (t.textContent.trim() && r.width > 1) boxes.push({text: t.textContent.trim().slice(0, 50), x: r.x,
                y: r.y, width: r.width, height: r.height, chart: index, node: count++}); }));
    return boxes; }"""


def collisions(boxes, slack=2.0):
    """Pairs of texts that cover each other (within one chart, or both in the page's HTML)."""
    found = []
    for i, a in enumerate(boxes):
        for b in boxes[i + 1:]:
            if a["chart"] == b["chart"] and a["node"] != b["node"] and overlaps(a, b, slack):
                found.append((a["text"], b["text"], a["chart"]))
    return found


@pytest.fixture
def room(browser):
    """A browser tab at 1024×768; :func:`at_each_size` shows the same page at 1920×1080 next."""
    context = browser.new_context(viewport=ROOM)
    page = context.new_page()
    page.set_default_timeout(60_000)
    yield page
    context.close()


def at_each_size(page):
    """The page as it is at 1024×768, then the same page at 1920×1080: the window resized as a person would on
    another screen (the app redraws for the new width; nothing reruns or reloads). Yields each width."""
    for size in VIEWPORTS.values():
        if page.viewport_size != size:
            page.set_viewport_size(size)
        settle(page)
        yield size["width"]


def test_table1s_comparison_columns_are_on_screen_without_scrolling_sideways(three_models, room):
    open_compare_with_every_model(room, three_models)
    tables = room.locator('[data-testid="stDataFrame"]')  # the page's first three: one Table 1 per model
    assert room.locator('[data-testid="stMarkdownContainer"] strong', has_text="mobilenet_v2").count()
    for wide in at_each_size(room):
        for index in range(3):
            table = tables.nth(index)
            table.scroll_into_view_if_needed()
            box = table.bounding_box()
            assert box["x"] >= 0 and box["x"] + box["width"] <= wide
            scroller = table.evaluate("""t => { const s = t.querySelector('.dvn-scroller');
                return {scrollWidth: s.scrollWidth, clientWidth: s.clientWidth, scrollHeight: s.scrollHeight,
                        clientHeight: s.clientHeight}; }""")
            assert scroller["scrollWidth"] <= scroller["clientWidth"] + 1, (wide, scroller)  # no sideways scroll
            assert scroller["scrollHeight"] <= scroller["clientHeight"] + 1, (wide, scroller)  # tall enough


@pytest.mark.parametrize("path", list(PAGES))
def test_no_text_lies_on_other_text(three_models, room, path, screenshots):
    room.goto(f"{three_models}/{path}")
    room.locator("h1", has_text=PAGES[path]).first.wait_for()
    if path in READY:
        selector, count = READY[path]
        room.locator(selector).nth(count - 1).wait_for(timeout=180_000)
    for wide in at_each_size(room):
        found = collisions(room.evaluate(TEXT_BOXES))
        assert not found, f"/{path} at {wide} px: {found[:8]}"
        if wide == ROOM["width"] and path in PHOTOGRAPHED:
            photograph(room, screenshots / f"{path or 'home'}-{ROOM['width']}.png")


TALLEST_SHOT = 3000  # px: a longer page is photographed down to here


def photograph(page, path):
    """The whole page (to TALLEST_SHOT) at this width: the window is made as tall as the page's main column,
    which scrolls inside itself, then put back."""
    size = page.viewport_size
    tall = page.evaluate("""() => { const m = document.querySelector('[data-testid="stMain"]');
        return Math.max(m.scrollHeight, window.innerHeight); }""")
    page.set_viewport_size({"width": size["width"], "height": min(int(tall), TALLEST_SHOT)})
    settle(page)
    page.screenshot(path=path)
    page.set_viewport_size(size)


# The smallest text of every drawing of the decision tree: the whole tree drawn at once shrank to about 6 px.
TREE_TEXT = """() => [...document.querySelectorAll('[data-testid="stGraphVizChart"] svg')].map(svg => ({
    smallest: Math.min(...[...svg.querySelectorAll('text')].map(t => t.getBoundingClientRect().height)),
    right: svg.getBoundingClientRect().right, texts: [...svg.querySelectorAll('text')].map(t => t.textContent)}))"""


def test_the_wizards_tree_is_legible_path_and_whole(three_models, room):
    room.goto(f"{three_models}/wizard")
    room.locator("h1", has_text="Scheme wizard").wait_for()
    for label in ("Labelled training data", "CPU", "Accuracy"):
        room.locator('[data-testid="stRadio"]').get_by_text(label, exact=True).click()
        settle(room)
    whole_tree = room.locator('[data-testid="stCheckbox"]', has_text="Show the whole tree")
    for wide in at_each_size(room):
        for whole in (False, True):
            if whole_tree.locator("input").is_checked() != whole:
                whole_tree.click()
                settle(room)
            if whole:
                for fold in room.locator("details summary").all():  # open every part
                    if fold.locator("xpath=..").get_attribute("open") is None:
                        fold.click()
                settle(room)
            drawings = room.evaluate(TREE_TEXT)
            assert drawings and len(drawings) >= (6 if whole else 1)
            for drawing in drawings:
                assert drawing["smallest"] >= 11, (wide, whole, drawing)  # legible on a projector
                assert drawing["right"] <= wide
                assert "None" not in drawing["texts"]


def test_model_and_datas_facts_are_not_cut(three_models, room):
    room.goto(f"{three_models}/model_data")
    room.locator("h1", has_text="Model & data").wait_for()
    room.locator('[data-testid="stMetricValue"]').nth(7).wait_for()  # four facts of the model, four of the data
    for wide in at_each_size(room):
        cut = room.evaluate("""() => [...document.querySelectorAll(
            '[data-testid="stMetricValue"] div, [data-testid="stMetricValue"] p, [data-testid="stMetricLabel"] p')]
            .filter(e => e.scrollWidth > e.clientWidth + 1 || e.getBoundingClientRect().right > window.innerWidth)
            .map(e => e.textContent)""")
        assert not cut, wide  # failed before: "28 × 2…", "Classes in the d…"


# Every checkbox label cut short (ellipsis) or running off the window: the LiteRT Quantizer box cut its labels.
CUT_LABELS = """() => [...document.querySelectorAll('[data-testid="stCheckbox"] *')]
    .filter(e => e.textContent.trim() && e.offsetParent !== null && !e.closest('details:not([open])')
            && e.clientWidth > 0 && (e.scrollWidth > e.clientWidth + 1 || e.getBoundingClientRect().right > window.innerWidth))
    .map(e => e.textContent)"""


def test_optimizes_scheme_labels_are_whole_litert_quantizers_too(three_models, room):
    room.goto(f"{three_models}/optimize")
    room.locator("h1", has_text="Optimize").wait_for()
    settle(room)
    room.locator("details summary", has_text="LiteRT Quantizer").click()
    for wide in at_each_size(room):
        assert room.locator('[data-testid="stCheckbox"]', has_text="lq_int8_selective").is_visible()
        cut = room.evaluate(CUT_LABELS)
        # failed before: 'LiteRT Quantizer dynamic int8 (lq_dynamic_int8)' shown 211 of its 290 px
        assert not cut, wide
