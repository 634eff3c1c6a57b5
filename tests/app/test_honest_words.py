"""Honest words: what a page says matches what happened (issue 25's "small untruths")."""

import re
import threading

import apphelpers
from apphelpers import FAILURE, FakeSweep, texts, wait_until

from optlib.engine import sweep

WORDS = "refused the DEPTHWISE_CONV_2D layer" if "(DEPTHWISE" in FAILURE else "refused one layer with int16"


def in_order(node):
    """Every element under ``node`` (an AppTest block), in the order the page draws them."""
    for child in getattr(node, "children", {}).values():
        yield child
        yield from in_order(child)


def values(at, kind):
    return [str(getattr(e, "value", "")) for e in in_order(at.main) if type(e).__name__ == kind]


def no_nan_or_none(text):
    return not re.search(r"\b(nan|NaN|None)\b", text)


def test_compare_never_says_nan_for_a_run_without_a_note_when_the_store_holds_a_failed_run(app, home):
    from optlib.engine.store import Store

    store = Store()
    apphelpers.store_canned(store, "float32")
    qat = apphelpers.store_canned(store, "qat")
    apphelpers.store_canned(store, "int16x8", fail=True)
    untrained = {**apphelpers.canned_metrics("float32"), "accuracy": None, "trained": False,
                 "accuracy_note": "untrained (no ImageNet weights found): size and latency only"}
    apphelpers.put_run(store, "float32", "mobilenet_v2", "mnv2-fp", "digits", "digits-fp", metrics=untrained)
    at = app("compare.py")
    at.multiselect(key="compare_filter_model").set_value([]).run()
    at.selectbox(key="compare_run").set_value(qat["id"]).run()
    assert not at.exception
    said = texts(at.caption)
    assert "Quantization-aware training" in said and no_nan_or_none(said), said


def test_a_failed_run_is_said_in_words_with_the_engines_message_one_click_away(app, filled_home):
    from optlib.engine.store import Store

    failed = Store().rows(status="failed")[0]["id"]
    at = app("compare.py")
    at.selectbox(key="compare_run").set_value(failed).run()
    assert not at.exception
    said = texts(at.error)
    assert "int16x8 failed: TensorFlow Lite" in said and WORDS in said and "Use int8" in said
    assert "RuntimeError" not in said
    raw = [e for e in at.expander if e.label == "The engine's own message"]
    assert raw and FAILURE in texts(raw[0].code)


def test_after_stop_the_bar_says_stopped_and_how_many_finished(app, home, monkeypatch):
    gate = threading.Event()
    monkeypatch.setattr(sweep, "run", FakeSweep(gate=gate))
    at = app("optimize.py")
    at.button(key="optimize_run_button").click().run()
    job = at.session_state["optimize_job"]
    assert wait_until(lambda: job.state()[2].get("float32", ("",))[0] == "ok")
    at.run()
    at.button(key="optimize_stop_button").click().run()
    job.wait(10)
    at.run()
    assert not at.exception
    bar = at.get("progress")[0].proto
    assert bar.text == "Stopped — 1 of 5 finished" and bar.value == 20


def test_the_failed_schemes_reasons_are_below_the_summary_that_points_to_them(app, home, monkeypatch):
    monkeypatch.setattr(sweep, "run", FakeSweep(fail={"int16x8"}))
    at = app("optimize.py")
    at.button(key="optimize_run_button").click().run()
    at.session_state["optimize_job"].wait(60)
    at.run()
    assert not at.exception
    drawn = [(type(e).__name__, str(getattr(e, "value", ""))) for e in in_order(at.main)]
    summary = next(i for i, (kind, text) in enumerate(drawn) if kind == "Warning" and "reasons below" in text)
    reason = next(i for i, (kind, text) in enumerate(drawn) if "**int16x8**" in text)
    assert summary < reason
    assert WORDS in drawn[reason][1] and FAILURE not in drawn[reason][1]
    assert at.get("progress")[0].proto.text == "Done"
    raw = [e for e in at.expander if e.label.startswith("The engine's own message")]
    assert raw and FAILURE in texts(raw[0].code)
    assert WORDS in " ".join(at.dataframe[-1].value["error"])  # the table's reason column says it in words too


def test_present_with_an_untrained_model_shows_what_it_can(app, home):
    from optlib.engine.store import Store

    store = Store()
    for scheme, snr in (("float32", 160.0), ("int8", 21.0)):
        untrained = {**apphelpers.canned_metrics(scheme), "accuracy": None, "trained": False,
                     "accuracy_note": "untrained (no ImageNet weights found): size and latency only",
                     "fidelity_snr_db": snr, "fidelity_cosine": 0.99, "fidelity_top1_agreement": 0.9}
        apphelpers.put_run(store, scheme, "mobilenet_v2", "mnv2-fp", "digits", "digits-fp", metrics=untrained)
    at = app("present.py")
    assert not at.exception
    assert [m.label for m in at.metric] == ["Download (gzipped)", "Latency"]  # no "not measured" tile
    assert "No accuracy for this model (untrained" in texts(at.info)
    import json

    chart = json.loads(at.get("plotly_chart")[0].proto.spec)
    drawn = [trace for trace in chart["data"] if trace.get("mode") == "markers"]
    assert drawn and "Fidelity" in chart["layout"]["yaxis"]["title"]["text"]  # not an empty chart


def test_layer_insight_chooses_no_layer_when_int8_lost_nothing(app, home, monkeypatch):
    import test_insight_page as page

    def no_loss(scheme):  # int8 as accurate as float32 on this data
        return {**apphelpers.canned_metrics(scheme), "accuracy": apphelpers.CANNED["float32"][0]}

    monkeypatch.setattr(page, "canned_metrics", no_loss)
    page.use_fake_layer_report(monkeypatch, page.FakeLayerReport())
    at = page.compare_layers(app("insight.py"))
    assert not at.exception
    assert at.multiselect(key="insight_keep").value == []
    assert "int8 lost nothing against float32" in texts(at.success) and "not needed" in texts(at.success)


def test_layer_insight_still_suggests_the_worst_layer_when_int8_lost_accuracy(app, home, monkeypatch):
    import test_insight_page as page

    page.use_fake_layer_report(monkeypatch, page.FakeLayerReport())
    at = page.compare_layers(app("insight.py"))
    assert not at.exception
    assert at.multiselect(key="insight_keep").value == [page.WORST]
    assert "lost nothing" not in texts(at.success)
