"""Reading a Streamlit dataframe's cells as the browser has them (the grid's accessible table)."""

GRID = "e => [...e.querySelectorAll('table tr')].map(r => [...r.querySelectorAll('th,td')].map(c => c.textContent))"


def grid(page, index, ready=bool, timeout_s=20):
    """The cells of the index-th dataframe as the browser has them (visible columns), once ``ready(rows)``.

    The grid fills its cells a moment after the page has drawn it, and again after each rerun.
    """
    rows = []
    for _ in range(timeout_s * 4):
        cells = page.locator('[data-testid="stDataFrame"]').nth(index).evaluate(GRID)
        rows = [dict(zip(_names(cells[0]), row)) for row in cells[1:]] if cells else []
        if ready(rows):
            return rows
        page.wait_for_timeout(250)
    return rows


def _names(headers):
    """The columns' names, without the arrow of the column the grid is sorted by ("↑ Size (MB)")."""
    return [header.lstrip("↑↓ ") for header in headers]


def sort_by(page, index, column):
    """Sort the index-th dataframe by ``column``, ascending, as a user does: a click on its header.

    The grid draws on a canvas, so the header has no element to click: step along the header row until the
    grid says it is sorted by that column. A click that sorts by another column moves on as soon as the grid
    says so; only a click that changes nothing waits its two seconds.
    """
    frame = page.locator('[data-testid="stDataFrame"]').nth(index)
    frame.scroll_into_view_if_needed()
    box = frame.bounding_box()
    headers = frame.evaluate(GRID)[0]
    for x in range(10, int(box["width"]), 30):
        before = headers
        page.mouse.click(box["x"] + x, box["y"] + 17)  # the middle of the header row
        for _ in range(20):  # the grid redraws a moment after the click
            headers = frame.evaluate(GRID)[0]
            if f"↑ {column}" in headers:
                return
            if headers != before:  # sorted by another column (or the other way): the next step
                break
            page.wait_for_timeout(100)
    raise AssertionError(f"no header {column!r} to sort by in {_names(headers)}")
