"""The published figures and cited sources against the source documents themselves.

The developers keep text copies of the documents the project draws on in
``../shared/seeds/``, beside their checkout. A user's clone does not have that
folder, so this module is skipped there; it is the only test that reads
outside the project. Every other test checks the app and the engine against
``assets/reference/*.csv``, which this module ties to the documents:
every row of the CSVs occurs word for word in the guide's text, and each
source the Wizard cites is the document its title and address say.
"""

import csv
import re
from pathlib import Path

import pytest

from optlib.analysis import reference
from optlib.guide import wizard

SEEDS = Path(__file__).resolve().parents[2].parent / "shared" / "seeds"

if not SEEDS.is_dir():
    pytest.skip("../shared/seeds/ is not beside this clone: the published figures are checked against their "
                "source documents only in the developers' checkout", allow_module_level=True)

# The developers' copy of each document. File names stay in this module: nothing
# the project shows or ships names them.
GUIDE_TEXT = SEEDS / "000_c3c454f1a6893647.txt"  # the guide's page, as text
GUIDE_MARKDOWN = SEEDS / "001_f03a66b82afc1551.txt"  # an older Markdown version of the guide
COPIES = {
    wizard.GUIDE: GUIDE_TEXT,
    wizard.TALE: SEEDS / "002_f86cccadf302645c.txt",
    wizard.TOOLKIT_BLOG: SEEDS / "003_9ab37dc176012ffe.txt",
    wizard.PTQ_ADVICE: SEEDS / "004_24ea7ed85a46e9c0.txt",
}

TABLE1_CELLS = reference.TABLE1_NUMERIC  # the published figures, in the guide's column order
TABLE2_CELLS = ("float32_text", "int8_text", "int16_text")


def raw_rows(name):
    """The CSV exactly as written, every cell a string ("0.70" stays "0.70")."""
    with open(reference.REFERENCE_DIR / name, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def published(cell):
    """A cell as the guide prints it: an empty CSV cell is the guide's N/A."""
    return cell or reference.NA_LABEL


@pytest.fixture(scope="module")
def guide_text():
    return GUIDE_TEXT.read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def html_rows():
    html = GUIDE_MARKDOWN.read_text(encoding="utf-8")
    rows = [re.findall(r"<td>(.*?)</td>", row) for row in re.findall(r"<tr>(.*?)</tr>", html)]
    return {cells[0]: cells[1:] for cells in rows if cells}


def test_guide_headers_and_titles_match_the_column_order(guide_text):
    # The CSV column order follows these header lines.
    assert (
        "Model Top-1 Accuracy (Original) Top-1 Accuracy (Post Training Quantized) "
        "Top-1 Accuracy (Quantization Aware Training) Latency (Original) (ms) "
        "Latency (Post Training Quantized) (ms) Latency (Quantization Aware Training) (ms) "
        "Size (Original) (MB) Size (Optimized) (MB)\n"
    ) in guide_text
    assert (
        "Model Accuracy metric type Accuracy (float32 activations) "
        "Accuracy (int8 activations) Accuracy (int16 activations)\n"
    ) in guide_text
    assert reference.TABLE1_TITLE + "\n" in guide_text
    assert reference.TABLE2_TITLE + "\n" in guide_text
    assert "Pixel 2 devices using a single big core CPU" in guide_text


@pytest.mark.parametrize("row", raw_rows("table1.csv"), ids=lambda row: row["model"])
def test_table1_row_occurs_verbatim_in_the_guide(row, guide_text):
    cells = [published(row[c]) for c in TABLE1_CELLS]
    # The page text runs cells together: name + accuracies, a space, latencies + sizes.
    line = row["model"] + "".join(cells[:3]) + " " + "".join(cells[3:]) + "\n"
    assert "\n" + line in guide_text


@pytest.mark.parametrize("row", raw_rows("table1.csv"), ids=lambda row: row["model"])
def test_table1_row_matches_the_html_table_of_the_older_version(row, html_rows):
    assert html_rows[row["model"]] == [published(row[c]) for c in TABLE1_CELLS]


def test_html_table_has_no_row_missing_from_table1(html_rows):
    assert set(html_rows) == {row["model"] for row in raw_rows("table1.csv")}


@pytest.mark.parametrize("row", raw_rows("table2.csv"), ids=lambda row: row["model"])
def test_table2_row_occurs_verbatim_in_the_guide(row, guide_text):
    f32, i8, i16 = (row[c] for c in TABLE2_CELLS)
    line = row["model"] + row["metric"] + f32 + i8 + " " + i16 + "\n"
    assert "\n" + line in guide_text


def test_every_cited_source_has_its_copy():
    assert set(COPIES) == set(wizard.SOURCES)
    assert all(path.is_file() for path in COPIES.values())


@pytest.mark.parametrize("source, evidence", [
    (wizard.GUIDE, "Model optimization\n"),  # the page's own heading
    (wizard.TALE, wizard.SOURCES[wizard.TALE][0] + "\n"),
    (wizard.TOOLKIT_BLOG, wizard.SOURCES[wizard.TOOLKIT_BLOG][1] + "?hl=ko\n"),  # the copy starts with its address
], ids=lambda value: value if value in wizard.SOURCES else None)
def test_the_copy_starts_as_its_title_or_address_says(source, evidence):
    assert COPIES[source].read_text(encoding="utf-8").startswith(evidence)


def test_the_untitled_page_is_the_one_its_title_names():
    # The ApX page carries no title: its copy names the publisher and the subject.
    text = COPIES[wizard.PTQ_ADVICE].read_text(encoding="utf-8")
    assert "ApX Machine Learning" in text and "TensorFlow ecosystem" in text
    assert "ApX Machine Learning" in wizard.SOURCES[wizard.PTQ_ADVICE][0]
