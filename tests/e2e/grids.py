"""Reading a Streamlit dataframe's cells as the browser has them (the grid's accessible table)."""

GRID = "e => [...e.querySelectorAll('table tr')].map(r => [...r.querySelectorAll('th,td')].map(c => c.textContent))"


def grid(page, index, ready=bool, timeout_s=20):
    """The cells of the index-th dataframe as the browser has them (visible columns), once ``ready(rows)``.

    The grid fills its cells a moment after the page has drawn it, and again after each rerun.
    """
    rows = []
    for _ in range(timeout_s * 4):
        cells = page.locator('[data-testid="stDataFrame"]').nth(index).evaluate(GRID)
        rows = [dict(zip(cells[0], row)) for row in cells[1:]] if cells else []
        if ready(rows):
            return rows
        page.wait_for_timeout(250)
    return rows
