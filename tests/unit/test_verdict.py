"""optlib.analysis.verdict: the scheme to take for size and for speed, from the measured figures."""

from optlib.analysis import report
from optlib.analysis.verdict import verdict
from rows import result


def frame(*rows):
    return report.frame(list(rows))


def test_the_smallest_and_the_fastest_within_the_accuracy_budget():
    view = frame(result("float32", 1, accuracy=0.975, size=230_000, gzip=211_000, median=0.030),
                 result("int8", 2, accuracy=0.969, size=64_000, gzip=57_700, median=0.012),
                 result("qat", 3, accuracy=0.950, size=63_000, gzip=48_700, median=0.010),  # loses 2.5 points
                 result("dynamic", 4, accuracy=0.972, size=64_000, gzip=59_200, median=0.011))
    size, speed = verdict(view)
    assert (size.goal, size.scheme, size.run_id) == ("size", "int8", 2)  # qat is smaller but loses too much
    assert "3.7× smaller download (57.7 kB)" in size.sentence and "top-1 -0.6 points (96.9%)" in size.sentence
    assert "within 1 point of float32's top-1" in size.sentence
    assert (speed.scheme, speed.run_id) == ("dynamic", 4)
    assert "2.7× faster" in speed.sentence
    assert verdict(view, max_loss=3.0)[0].scheme == "qat"


def test_no_scheme_better_than_float32_says_so_and_a_slower_one_is_never_chosen():
    view = frame(result("float32", 1, accuracy=0.975, gzip=211_000, median=0.030),
                 result("int16x8", 2, accuracy=0.975, gzip=211_000, median=1.09))
    size, speed = verdict(view)
    assert size.scheme is None and speed.scheme is None
    assert speed.sentence.startswith("No scheme beats float32 on speed within 1 point")


def test_an_untrained_model_is_judged_on_size_and_speed_and_says_so():
    view = frame(result("float32", 1, accuracy=None, gzip=13_000_000, median=8.0),
                 result("int8", 2, accuracy=None, gzip=3_500_000, median=12.0))
    size, speed = verdict(view)
    assert size.scheme == "int8" and "no accuracy measured" in size.sentence
    assert speed.scheme is None


def test_without_a_float32_run_there_is_no_verdict():
    assert verdict(frame(result("int8", 2))) == []


def test_a_regression_model_is_judged_by_its_mae_growing_at_most_one_percent():
    def regression(scheme, id_, mae, gzip, median):
        return {**result(scheme, id_, accuracy=None, gzip=gzip, median=median), "task": "regression",
                "metric_name": "MAE", "metric_value": mae, "higher_is_better": False, "trained": True}

    view = frame(regression("float32", 1, 40.0, 4_300, 0.004), regression("int8", 2, 40.2, 2_500, 0.005),
                 regression("int16x8", 3, 42.0, 2_400, 0.003))  # the smallest, but MAE 5% worse
    size, speed = verdict(view)
    assert (size.scheme, speed.scheme) == ("int8", None)
    assert "within 1% of float32's MAE (lower is better)" in size.sentence
    assert "MAE 40.2, +0.2 against float32 (lower is better)" in size.sentence
    assert verdict(view, max_loss=10.0)[0].scheme == "int16x8"
