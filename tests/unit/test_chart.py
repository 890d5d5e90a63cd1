"""The distribution chart's SVG, parsed: structure, accessibility, proportional bars, escaping."""

from __future__ import annotations

import itertools
import xml.etree.ElementTree as ET

import pytest

from records.chart import distribution_svg

NS = {"svg": "http://www.w3.org/2000/svg"}
LABELS = ["eks-eu1", "rke2-dc1", "k3s-edge"]
INTENDED = [50.0, 30.0, 20.0]
OBSERVED = [48.2, 20.5, 31.3]


def _parse(svg: str) -> ET.Element:
    return ET.fromstring(svg)  # noqa: S314  (our own output, parsed to check it is well-formed)


def _bars(root: ET.Element, kind: str) -> list[ET.Element]:
    return [r for r in root.iterfind(".//svg:rect", NS) if r.get("class") == f"bar {kind}"]


def test_chart_is_an_accessible_responsive_image() -> None:
    root = _parse(distribution_svg(LABELS, INTENDED, OBSERVED, "app.example.com: intended vs observed"))
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    assert root.get("role") == "img"
    assert root.get("width") == "100%"
    assert root.get("viewBox", "").startswith("0 0 400 ")  # 400 units wide: 12-unit text ≈ 12 px at 390 px
    title = root.find("svg:title", NS)
    desc = root.find("svg:desc", NS)
    assert title is not None and title.text == "app.example.com: intended vs observed"
    assert desc is not None
    assert desc.text == (
        "eks-eu1: intended 50 %, observed 48.2 %; rke2-dc1: intended 30 %, observed 20.5 %; "
        "k3s-edge: intended 20 %, observed 31.3 %."
    )
    ids = {el.get("id") for el in root.iter() if el.get("id")}
    assert set(root.get("aria-labelledby", "").split()) == {title.get("id"), desc.get("id")} <= ids


def test_chart_has_a_legend_an_axis_and_one_bar_pair_per_label() -> None:
    root = _parse(distribution_svg(LABELS, INTENDED, OBSERVED, "t"))
    texts = ["".join(t.itertext()) for t in root.iter("{http://www.w3.org/2000/svg}text")]
    assert "intended" in texts and "observed" in texts
    axis = next(g for g in root.iter("{http://www.w3.org/2000/svg}g") if g.get("class") == "axis")
    ticks = ["".join(t.itertext()) for t in axis.iter("{http://www.w3.org/2000/svg}text")]
    assert ticks == ["0 %", "25 %", "50 %", "75 %", "100 %", "share of answers (%)"]
    groups = [g for g in root.iter("{http://www.w3.org/2000/svg}g") if g.get("class") == "category"]
    assert [g.get("data-label") for g in groups] == LABELS
    assert len(_bars(root, "intended")) == len(_bars(root, "observed")) == 3


def test_bar_lengths_are_proportional_to_the_shares() -> None:
    root = _parse(distribution_svg(["a", "b", "c"], [100.0, 50.0, 0.0], [25.0, 75.0, 10.0], "t"))
    intended = [float(r.get("width", "nan")) for r in _bars(root, "intended")]
    observed = [float(r.get("width", "nan")) for r in _bars(root, "observed")]
    full = intended[0]
    assert full > 0
    assert intended[1] == pytest.approx(full / 2, abs=0.01)
    assert intended[2] == 0
    assert observed == pytest.approx([full * 0.25, full * 0.75, full * 0.10], abs=0.01)
    assert [r.get("data-value") for r in _bars(root, "observed")] == ["25", "75", "10"]
    # every bar starts on the 0 % line, and bars of one group do not overlap
    assert {r.get("x") for r in _bars(root, "intended") + _bars(root, "observed")} == {
        _bars(root, "intended")[0].get("x")
    }
    ys = sorted(float(r.get("y", "nan")) for r in _bars(root, "intended") + _bars(root, "observed"))
    heights = float(_bars(root, "intended")[0].get("height", "nan"))
    assert all(b - a >= heights for a, b in itertools.pairwise(ys))


def test_labels_and_title_are_escaped() -> None:
    label = 'evil <script>alert("x")</script> & co'
    svg = distribution_svg([label], [100.0], [100.0], "a <b> & 'c'")
    assert "<script>" not in svg
    root = _parse(svg)
    group = next(g for g in root.iter("{http://www.w3.org/2000/svg}g") if g.get("class") == "category")
    assert group.get("data-label") == label  # the attribute round-trips, quotes included
    assert "".join(next(group.iter("{http://www.w3.org/2000/svg}text")).itertext()) == label
    title = root.find("svg:title", NS)
    assert title is not None and title.text == "a <b> & 'c'"


def test_each_chart_gets_its_own_ids() -> None:
    a = _parse(distribution_svg(["x"], [100.0], [100.0], "first"))
    b = _parse(distribution_svg(["x"], [100.0], [100.0], "second"))
    c = _parse(distribution_svg(["x"], [100.0], [100.0], "first", id_prefix="cs-7"))
    assert a.get("aria-labelledby") != b.get("aria-labelledby")
    assert c.get("aria-labelledby") == "cs-7-title cs-7-desc"


def test_no_labels_is_still_a_valid_chart() -> None:
    root = _parse(distribution_svg([], [], [], "nothing measured yet"))
    desc = root.find("svg:desc", NS)
    assert desc is not None and desc.text == "no record sets."


@pytest.mark.parametrize(
    ("labels", "intended", "observed", "message"),
    [
        (["a", "b"], [50.0], [50.0, 50.0], "each label needs one of each"),
        (["a"], [101.0], [50.0], "a: intended share 101.0 is not a percentage"),
        (["a"], [50.0], [-1.0], "a: observed share -1.0 is not a percentage"),
    ],
)
def test_bad_input_is_refused(
    labels: list[str], intended: list[float], observed: list[float], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        distribution_svg(labels, intended, observed, "t")


def test_without_observed_shares_only_the_intended_split_is_drawn() -> None:
    # The policy editor's chart: the split a person is about to propose, before anything is measured.
    root = _parse(distribution_svg(["rke2-dc1", "k3s-edge"], [80.0, 20.0], None, "split", id_prefix="s"))
    assert len(_bars(root, "intended")) == 2 and not _bars(root, "observed")
    texts = ["".join(t.itertext()) for t in root.iter("{http://www.w3.org/2000/svg}text")]
    assert "intended" in texts and "observed" not in texts
    desc = root.find("svg:desc", NS)
    assert desc is not None and desc.text == "rke2-dc1: intended 80 %; k3s-edge: intended 20 %."
