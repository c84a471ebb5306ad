"""Protocol fingerprints (docs/protocol.md, Protocol fingerprints): what each protocol and
metric yields, ``wsol compare`` refusing a differing one by field, and ``--published``."""
from __future__ import annotations

import pandas as pd

from wsol.cli.app import main
from wsol.comparison import read_paper_numbers
from wsol.localize.protocols import get_protocol
from wsol.metrics.fingerprint import FIELDS, Fingerprint, from_mapping, measured_fingerprint
from wsol.report.published import groups, to_markdown


def fp(metric, protocol="wsoleval", **kw):
    return measured_fingerprint(metric, get_protocol(protocol), **kw).as_dict()


def test_wsoleval_fingerprints_per_metric():
    base = {"map_resolution": "224", "test_crop": "resize224"}
    assert fp("top1_loc") == {**base, "threshold_policy": "test_best", "box_rule": "largest_contour",
                              "classifier": "same", "metric": "top1_loc"}
    assert fp("gt_known_loc")["classifier"] == "n/a"  # no classes in GT-known
    assert fp("maxboxacc_v2") == {**base, "threshold_policy": "test_best_per_iou", "box_rule": "all_contours",
                                  "classifier": "n/a", "metric": "maxboxacc_v2"}
    assert fp("top1_loc_fixed", fixed_tau=0.3)["threshold_policy"] == "fixed:0.3"
    assert fp("policy_top1_loc", tau_policy="pseudo_boxes", classifier="separate")["threshold_policy"] == "pseudo_boxes"
    assert fp("policy_top5_loc", tau_policy="fixed", fixed_tau=0.25)["threshold_policy"] == "fixed:0.25"
    assert fp("top1_loc_err")["metric"] == "top1_loc_err"  # the metric as printed
    assert fp("pxap")["box_rule"] == "pixel_mask" and fp("pxap")["threshold_policy"] == "all_tau"
    assert measured_fingerprint("top1_cls", get_protocol("wsoleval")) is None


def test_other_protocols_take_their_rules_from_the_protocol_object():
    assert fp("top1_loc", "cam2016_code")["threshold_policy"] == "fixed:0.2"  # one τ: nothing chosen
    assert fp("top1_loc", "cam2016_code")["box_rule"] == "cam2016_code_levels_20_100_110"
    assert fp("top1_loc", "cam2016")["map_resolution"] == "original"
    tscam = fp("top1_loc", "tscam", taus=[0.1])
    assert (tscam["threshold_policy"], tscam["box_rule"], tscam["map_resolution"]) == (
        "fixed:0.1", "tscam_largest_contour_8bit", "224")
    # MaxBoxAccV2 of a non-wsoleval run is the wsoleval scoring of the same maps
    assert fp("maxboxacc_v2", "tscam", taus=[0.1]) == fp("maxboxacc_v2")
    assert fp("maxboxacc_v2", "cam2016_code") == fp("maxboxacc_v2")


def test_differences_and_rows():
    a = Fingerprint("test_best", "largest_contour", "224", "resize224", "same", "top1_loc")
    b = Fingerprint("fixed:0.2", "largest_contour", "224", "ten_crop", "same", "top1_loc")
    assert a.differences(b) == [("threshold_policy", "test_best", "fixed:0.2"), ("test_crop", "resize224", "ten_crop")]
    assert from_mapping({"metric": "top1_loc"}) is None  # a row without a fingerprint
    got = from_mapping({"metric": "top1_loc", "classifier": "separate"})
    assert got.classifier == "separate" and got.box_rule == "unstated"
    assert a.text().split(";")[0] == "threshold_policy=test_best" and len(a.text().split(";")) == len(FIELDS)


def test_every_shipped_row_carries_a_fingerprint_and_a_source():
    p = read_paper_numbers()
    assert (p.fingerprint != "").all() and (p.source.str.len() > 10).all()
    ours = p[p.protocol == "external"]
    assert {"psol", "cream", "tscam", "scm", "sat", "catr", "genpromp"} <= set(ours.method)
    assert {m.split("_")[0] for m in ours.method} >= {"c2am", "da", "bagcams", "cam"}


def test_compare_sets_a_number_only_next_to_the_same_fingerprint(tmp_path, capsys):
    d = tmp_path / "runs"
    d.mkdir()
    keys = dict(dataset="cub", split="test", backbone="vgg16_gap", method="cam", protocol="wsoleval")
    pd.DataFrame([{**keys, "run_id": "r", "status": "ok", "top1_loc": 41.0, "maxboxacc_v2": 60.0,
                   "tau_policy": "pseudo_boxes", "policy_top1_loc": 39.0, "classifier": "same"}]).to_csv(
        d / "summary.csv", index=False)
    head = ("source,dataset,split,backbone,method,protocol,metric,value,threshold_policy,box_rule,map_resolution,"
            "test_crop,classifier\n")
    row = "S,cub,test,vgg16_gap,cam,wsoleval"
    (tmp_path / "paper.csv").write_text(head + "\n".join([
        f"{row},top1_loc,40,test_best,largest_contour,224,resize224,same",        # agrees
        f"{row},maxboxacc_v2,61,test_best_per_iou,all_contours,224,resize224,n/a",  # agrees
        f"{row},policy_top1_loc,38,test_best,largest_contour,224,resize224,same",  # τ policy differs
        f"{row},top1_loc_err,58,fixed:0.2,largest_contour,224,ten_crop,separate",  # three fields differ
    ]) + "\n")
    assert main(["-q", "compare", str(d), "--paper", str(tmp_path / "paper.csv")]) == 0
    out = capsys.readouterr().out
    cmp = pd.read_csv(d / "comparison.csv")
    assert list(cmp.status) == ["measured", "measured", "fingerprint differs", "fingerprint differs"]
    assert list(cmp.measured[:2]) == [41.0, 60.0] and cmp.measured[2:].isna().all()
    assert cmp.note[2] == "fingerprint differs in threshold_policy (measured pseudo_boxes, published test_best)"
    assert cmp.note[3] == ("fingerprint differs in threshold_policy (measured test_best, published fixed:0.2); "
                           "test_crop (measured resize224, published ten_crop); "
                           "classifier (measured same, published separate)")
    assert "refused: cub/vgg16_gap/cam/policy_top1_loc" in out and "published test_best" in out


def test_published_table_grouped_by_fingerprint(tmp_path, capsys):
    assert main(["-q", "compare", "--published", "--out", str(tmp_path)]) == 0
    assert "published.md" in capsys.readouterr().out
    md = (tmp_path / "published.md").read_text()
    page = (tmp_path / "published.html").read_text()
    p = read_paper_numbers()
    gs = groups(p)
    assert sum(len(g) for _, g in gs) == len(p) and md == to_markdown(p)
    for fields, g in gs:  # one fingerprint per group
        assert g.fingerprint.nunique() == 1
    assert md.count("\n## ") == len(gs) == page.count("<h2>")
    assert "threshold_policy = `test_best_per_iou`; box_rule = `all_contours`" in md
    assert "BagCAMs on DA-WSOL" in page and page.startswith("<!doctype html>")
    assert main(["-q", "compare"]) == 2
    assert "wsol compare needs DIR (a run or suite folder) or --published" in capsys.readouterr().err
