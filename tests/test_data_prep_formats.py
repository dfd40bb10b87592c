"""Every annotation sample in tests/fixtures/formats parses, with the documented traps handled."""
from __future__ import annotations

import pytest

from pan_lib.data import parsers as P
from pan_lib.data.lists import AnnotationError, read_list_file


def test_every_format_file_is_covered(shared_dir):
    covered = {
        "sthv1/something-something-v1-labels.csv", "sthv1/something-something-v1-test.head20.csv",
        "sthv1/something-something-v1-train.head20.csv", "sthv1/something-something-v1-validation.head20.csv",
        "sthv2/something-something-v2-labels.json", "sthv2/something-something-v2-test.head10.json",
        "sthv2/something-something-v2-train.excerpt.json", "sthv2/something-something-v2-validation.head10.json",
        "sthv2/test-answers.excerpt.csv", "jester/jester-v1-labels.csv", "jester/jester-v1-test.head20.csv",
        "jester/jester-v1-train.head20.csv", "jester/jester-v1-validation.head20.csv",
        "kinetics400/kinetics_test.head10.csv", "kinetics400/kinetics_val.excerpt.csv",
        "kinetics400/label_map_k400.mmaction2.txt", "ucf101/classInd.txt", "ucf101/testlist01.excerpt.txt",
        "ucf101/trainlist01.excerpt.txt", "hmdb51/brush_hair_test_split1.txt", "hmdb51/cartwheel_test_split1.txt",
        "hmdb51/chew_test_split1.txt", "list_files/mmaction2_rawframe_test_list.txt",
        "list_files/mmaction2_rawframe_test_list_multi_label.txt",
        "list_files/mmaction2_rawframe_test_list_with_offset.txt", "list_files/mmaction2_video_test_list.txt",
        "list_files/mmaction2_video_test_list_multi_label.txt", "list_files/pan_tsm_list.sthv2_derived.txt",
    }
    present = {p.relative_to(shared_dir / "formats").as_posix() for p in (shared_dir / "formats").rglob("*")
               if p.is_file() and p.name != "README.md"}
    assert present == covered, f"new fixture files need a test: {sorted(present - covered)}"


# ----------------------------------------------------------------------------- SSv1 / Jester
def test_sthv1_label_orders(shared_dir):
    labels = P.parse_label_lines(shared_dir / "formats/sthv1/something-something-v1-labels.csv")
    assert len(labels) == 174 and labels[0] == "Holding something"
    sorted_ = P.label_index(labels, "sorted")
    file_ = P.label_index(labels, "file")
    assert sorted_.index("Pretending to pick something up") == 68
    assert file_.index("Pretending to pick something up") == 16
    # the sorted SSv1 order equals the SSv2 labels.json order
    assert sorted_ == P.parse_sthv2_labels(shared_dir / "formats/sthv2/something-something-v2-labels.json")
    assert any("," in label for label in labels)


def test_sthv1_splits(shared_dir):
    d = shared_dir / "formats/sthv1"
    classes = P.label_index(P.parse_label_lines(d / "something-something-v1-labels.csv"))
    train = P.parse_id_label_csv(d / "something-something-v1-train.head20.csv", classes)
    val = P.parse_id_label_csv(d / "something-something-v1-validation.head20.csv", classes)
    test = P.parse_id_label_csv(d / "something-something-v1-test.head20.csv", classes, labeled=False)
    assert len(train) == 20 and len(val) == 20 and len(test) == 20
    assert train[0] == ("100218", classes.index("Something falling like a feather or paper"))
    assert all(label == -1 for _, label in test)
    # labels with an apostrophe survive (split on the first ';' only)
    assert ("1753", classes.index("Poking something so lightly that it doesn't or almost doesn't move")) in val


def test_jester(shared_dir):
    d = shared_dir / "formats/jester"
    labels = P.parse_label_lines(d / "jester-v1-labels.csv")
    assert len(labels) == 27 and labels != sorted(labels)
    for order in ("sorted", "file"):
        classes = P.label_index(labels, order)
        rows = P.parse_id_label_csv(d / "jester-v1-train.head20.csv", classes)
        assert rows[0] == ("34870", classes.index("Drumming Fingers"))
        assert len(P.parse_id_label_csv(d / "jester-v1-validation.head20.csv", classes)) == 20
    assert len(P.parse_id_label_csv(d / "jester-v1-test.head20.csv", labeled=False)) == 20


def test_malformed_csv_names_file_and_line(tmp_path):
    bad = tmp_path / "train.csv"
    bad.write_text("1;Holding something\n2 Holding something\n")
    with pytest.raises(AnnotationError, match=r"train\.csv:2: expected"):
        P.parse_id_label_csv(bad, ["Holding something"])
    bad.write_text("1;Holding something\n2;Juggling\n")
    with pytest.raises(AnnotationError, match=r"train\.csv:2: label 'Juggling'"):
        P.parse_id_label_csv(bad, ["Holding something"])


# ----------------------------------------------------------------------------- SSv2
def test_sthv2_labels_and_entries(shared_dir):
    d = shared_dir / "formats/sthv2"
    classes = P.parse_sthv2_labels(d / "something-something-v2-labels.json")
    assert len(classes) == 174 and classes == sorted(classes)
    train = P.parse_sthv2_entries(d / "something-something-v2-train.excerpt.json", classes)
    assert [e.id for e in train] == ["78687", "42326", "145274", "131791"]
    assert train[0].label == classes.index("Holding something next to something")
    val = P.parse_sthv2_entries(d / "something-something-v2-validation.head10.json", classes)
    assert len(val) == 10 and all(isinstance(e.id, str) for e in val)
    assert val[0].label == classes.index("Spinning something that quickly stops spinning")
    test = P.parse_sthv2_entries(d / "something-something-v2-test.head10.json", None)
    assert [e.id for e in test][:2] == ["1420", "166429"] and {e.label for e in test} == {-1}
    answers = P.parse_id_label_csv(d / "test-answers.excerpt.csv", classes)
    assert answers[1] == ("50058", classes.index("Stacking number of something"))


@pytest.mark.parametrize("template,name", [
    ("[Something] falling like a feather or paper", "Something falling like a feather or paper"),
    ("Taking [one of many similar things on the table]", "Taking one of many similar things on the table"),
    ("Stacking [number of] [something]", "Stacking number of something"),
    ("Tipping [something] with [something in it] over, so [something in it] falls out",
     "Tipping something with something in it over, so something in it falls out"),
])
def test_sthv2_template_bracket_removal(shared_dir, template, name):
    classes = P.parse_sthv2_labels(shared_dir / "formats/sthv2/something-something-v2-labels.json")
    assert P.strip_brackets(template) == name and name in classes


def test_sthv2_unknown_template_names_line(tmp_path, shared_dir):
    classes = P.parse_sthv2_labels(shared_dir / "formats/sthv2/something-something-v2-labels.json")
    f = tmp_path / "validation.json"
    f.write_text('[\n{"id":"1","template":"Holding [something]","placeholders":["x"]},\n'
                 '{"id":"2","template":"Juggling [something]","placeholders":["x"]}\n]\n')
    with pytest.raises(AnnotationError, match=r"validation\.json:3: entry 2 \(id 2\)"):
        P.parse_sthv2_entries(f, classes)


# ----------------------------------------------------------------------------- Kinetics
def test_kinetics_csv(shared_dir):
    d = shared_dir / "formats/kinetics400"
    rows = P.parse_kinetics_csv(d / "kinetics_val.excerpt.csv")
    labels = {r.label for r in rows}
    assert "air drumming" in labels and "massaging person's head" in labels
    assert "skiing (not slalom or crosscountry)" in labels and not any('"' in x for x in labels)
    dash = [r for r in rows if r.youtube_id.startswith("-")]
    assert dash and dash[0].key == "--nQbRBEz2s_000104_000114"
    test = P.parse_kinetics_csv(d / "kinetics_test.head10.csv")
    assert len(test) == 10 and all(r.label is None for r in test) and test[0].youtube_id == "--6bJUbfpnQ"
    label_map = (d / "label_map_k400.mmaction2.txt").read_text().splitlines()
    assert len(label_map) == 400 and label_map == sorted(label_map)
    assert labels <= set(label_map)
    # the trap: sorting after PAN's normalisation swaps the two skiing classes
    pan_sorted = sorted(label_map, key=P.kinetics_pan_name)
    i, j = label_map.index("skiing (not slalom or crosscountry)"), label_map.index("skiing crosscountry")
    assert (i, j) == (308, 309)
    assert pan_sorted[308] == "skiing crosscountry" and pan_sorted[309] == "skiing (not slalom or crosscountry)"


def test_kinetics_malformed(tmp_path):
    f = tmp_path / "kinetics_train.csv"
    f.write_text("label,youtube_id,time_start,time_end,split,is_cc\nabseiling,0wR5jVB-WPk,417,427,train,0\n"
                 "abseiling,short,1,11,train,0\n")
    with pytest.raises(AnnotationError, match=r"kinetics_train\.csv:3: youtube_id"):
        P.parse_kinetics_csv(f)


# ----------------------------------------------------------------------------- UCF101
def test_ucf101(shared_dir):
    d = shared_dir / "formats/ucf101"
    assert b"\r\n" in (d / "classInd.txt").read_bytes()
    classes = P.parse_ucf_classind(d / "classInd.txt")
    assert len(classes) == 101 and classes[0] == "ApplyEyeMakeup" and "HandstandPushups" in classes
    train = P.parse_ucf_split(d / "trainlist01.excerpt.txt", classes)
    test = P.parse_ucf_split(d / "testlist01.excerpt.txt", classes)
    assert train[0] == ("ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01.avi", 0)
    hs = [r for r in train + test if "HandStandPushups" in r[0]]
    assert hs and all(label == classes.index("HandstandPushups") for _, label in hs)
    assert not any(p.endswith("\r") for p, _ in train + test)


def test_ucf101_label_disagreeing_with_folder(tmp_path, shared_dir):
    classes = P.parse_ucf_classind(shared_dir / "formats/ucf101/classInd.txt")
    f = tmp_path / "trainlist01.txt"
    f.write_bytes(b"ApplyEyeMakeup/v_a.avi 1\r\nApplyEyeMakeup/v_b.avi 7\r\n")
    with pytest.raises(AnnotationError, match=r"trainlist01\.txt:2: label 7 disagrees"):
        P.parse_ucf_split(f, classes)


# ----------------------------------------------------------------------------- HMDB51
def test_hmdb51(shared_dir):
    d = shared_dir / "formats/hmdb51"
    cls, split, rows = P.parse_hmdb_split_file(d / "cartwheel_test_split1.txt")
    assert (cls, split) == ("cartwheel", 1) and len(rows) > 50
    names = [n for n, _ in rows]
    assert any(";" in n for n in names) and all(n.endswith(".avi") for n in names)
    assert all(flag in (0, 1, 2) for _, flag in rows)
    cls, _, rows = P.parse_hmdb_split_file(d / "brush_hair_test_split1.txt")
    assert cls == "brush_hair"
    _, _, chew = P.parse_hmdb_split_file(d / "chew_test_split1.txt")
    hash_names = [n for n, _ in chew if n.startswith("#")]
    assert len(hash_names) == 3 and all(n.endswith(".avi") for n in hash_names)  # '#' is no comment
    assert len(chew) == sum(1 for line in (d / "chew_test_split1.txt").read_text().splitlines() if line.strip())


def test_hmdb_malformed(tmp_path):
    f = tmp_path / "kick_ball_test_split2.txt"
    f.write_text("a.avi 1 \nb.avi 3 \n")
    with pytest.raises(AnnotationError, match=r"kick_ball_test_split2\.txt:2"):
        P.parse_hmdb_split_file(f)


# ----------------------------------------------------------------------------- list files
def test_list_files(shared_dir):
    d = shared_dir / "formats/list_files"
    pan = read_list_file(d / "pan_tsm_list.sthv2_derived.txt")
    assert [(r.path, r.num_frames, r.label) for r in pan][0] == ("2", 48, 68) and len(pan) == 4
    raw = read_list_file(d / "mmaction2_rawframe_test_list.txt", "mmaction2-rawframes")
    assert (raw[0].path, raw[0].num_frames, raw[0].label) == ("imgs", 5, 127)
    multi = read_list_file(d / "mmaction2_rawframe_test_list_multi_label.txt", "mmaction2-rawframes")
    assert any(len(r.labels) > 1 for r in multi)
    off = read_list_file(d / "mmaction2_rawframe_test_list_with_offset.txt", "mmaction2-rawframes-offset")
    assert (off[0].offset, off[0].num_frames, off[0].label) == (2, 5, 127)
    vid = read_list_file(d / "mmaction2_video_test_list.txt", "mmaction2-videos")
    assert (vid[0].path, vid[0].num_frames, vid[0].label) == ("test.mp4", -1, 0)
    vm = read_list_file(d / "mmaction2_video_test_list_multi_label.txt", "mmaction2-videos")
    assert vm[-1].labels == (0, 2, 4)


def test_list_file_malformed_line(tmp_path):
    f = tmp_path / "train_videos.txt"
    f.write_text("a/1 30 2\nb/2 thirty 1\n")
    with pytest.raises(AnnotationError, match=r"train_videos\.txt:2: num_frames"):
        read_list_file(f, "pan")
