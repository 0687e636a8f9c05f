"""Protocols: the published pair counts, pair semantics, and CSV round trips."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench import protocols
from bench.datasets.base import Dataset, DatasetInfo, Sample
from bench.protocols import ProtocolError

INFO = DatasetInfo("grid", "grid", "none", 500, None, None, None, "test", "", "", ("fvc",))


def grid(fingers: int, impressions: int, first: int = 101) -> Dataset:
    samples = [Sample(f"{f}_{i}", str(f), i, Path(f"{f}_{i}.tif"), 500)
               for f in range(first, first + fingers) for i in range(1, impressions + 1)]
    return Dataset(INFO, Path("."), samples)


@pytest.mark.parametrize("fingers,gen,imp", [(10, 280, 45), (100, 2800, 4950)])
def test_fvc_counts_as_published(fingers, gen, imp):
    pl = protocols.fvc(grid(fingers, 8, first=1 if fingers == 100 else 101))
    assert (pl.n_genuine, pl.n_impostor) == (gen, imp)


def test_fvc_pair_semantics():
    pl = protocols.fvc(grid(10, 8))
    pairs = {(p.probe, p.reference): p.genuine for p in pl.pairs}
    # genuine: later impression is the probe, earlier one the enrolled reference; no symmetric pair
    assert pairs[("101_2", "101_1")] is True
    assert ("101_1", "101_2") not in pairs
    assert ("101_8", "101_7") in pairs
    # impostor: first impressions only, each unordered pair once
    assert pairs[("102_1", "101_1")] is False
    assert ("101_1", "102_1") not in pairs
    assert not any(not g and not (p.endswith("_1") and r.endswith("_1")) for (p, r), g in pairs.items())
    assert len(pairs) == len(pl.pairs)  # no duplicates


def test_all_pairs_counts():
    pl = protocols.all_pairs(grid(10, 8))
    assert (pl.n_genuine, pl.n_impostor) == (280, 2880)
    keys = {frozenset((p.probe, p.reference)) for p in pl.pairs}
    assert len(keys) == len(pl.pairs) == 80 * 79 // 2


def test_subjects_sort_naturally():
    ds = grid(3, 2, first=8)  # subjects 8, 9, 10: "10" must not sort before "8"
    pl = protocols.fvc(ds)
    assert [(p.probe, p.reference) for p in pl.pairs if not p.genuine] == [
        ("9_1", "8_1"), ("10_1", "8_1"), ("10_1", "9_1")]


def test_csv_round_trip_and_validation(tmp_path):
    ds = grid(10, 8)
    pl = protocols.fvc(ds)
    path = tmp_path / "pairs.csv"
    pl.to_csv(path)
    back = protocols.build(str(path), ds)
    assert [(p.probe, p.reference, p.genuine) for p in back.pairs] == [
        (p.probe, p.reference, p.genuine) for p in pl.pairs]
    bad = tmp_path / "bad.csv"
    bad.write_text("probe,reference,genuine\n101_2,101_1,0\n")
    with pytest.raises(ProtocolError, match="marked genuine=0"):
        protocols.build(str(bad), ds)
    bad.write_text("probe,reference\n101_2,999_1\n")
    with pytest.raises(ProtocolError, match="unknown sample id '999_1'"):
        protocols.build(str(bad), ds)
    bad.write_text("probe,reference\n101_2,101_1\n101_2,101_1\n")
    with pytest.raises(ProtocolError, match="duplicate pair"):
        protocols.build(str(bad), ds)
    no_genuine_col = tmp_path / "plain.csv"
    no_genuine_col.write_text("probe,reference\n101_2,101_1\n102_1,101_1\n")
    assert [p.genuine for p in protocols.build(str(no_genuine_col), ds).pairs] == [True, False]


def test_unknown_protocol_suggests():
    with pytest.raises(ProtocolError, match="did you mean fvc"):
        protocols.build("fcv", grid(2, 2))


def test_socofing_altered_vs_real():
    real = [Sample(f"{s}_real", str(s), 1, Path("x"), 500) for s in range(1, 6)]
    altered = [Sample(f"{s}_{a}", str(s), 2, Path("y"), 500, {"alteration": a})
               for s in range(1, 6) for a in ("CR", "Obl")]
    ds = Dataset(INFO, Path("."), real + altered)
    pl = protocols.socofing(ds)
    assert pl.n_genuine == 10 and pl.n_impostor == 10 * 4
    assert all(p.probe.split("_")[1] in ("CR", "Obl") and p.reference.endswith("_real") for p in pl.pairs)
    sub = protocols.socofing(ds, impostors_per_probe=2, seed=1)
    assert sub.n_impostor == 20
    assert [p.reference for p in sub.pairs] == [p.reference for p in protocols.socofing(ds, impostors_per_probe=2, seed=1).pairs]


def test_f_vs_s_second_impression_against_first():
    pl = protocols.build("f-vs-s", grid(20, 2))
    assert (pl.n_genuine, pl.n_impostor) == (20, 20 * 19)  # SD 4: 2,000 and 3,998,000
    pairs = {(p.probe, p.reference): p.genuine for p in pl.pairs}
    assert pairs[("101_2", "101_1")] is True
    assert pairs[("101_2", "102_1")] is False and ("101_1", "102_2") not in pairs
    assert all(p.probe.endswith("_2") and p.reference.endswith("_1") for p in pl.pairs)
    drawn = protocols.build("f-vs-s", grid(20, 2), impostors_per_probe=3, seed=1)
    assert (drawn.n_genuine, drawn.n_impostor) == (20, 60)
    assert drawn.params == {"impostors_per_probe": 3, "seed": 1}
    with pytest.raises(ProtocolError, match="first and a second impression"):
        protocols.f_vs_s(grid(5, 1))


def test_every_protocol_a_dataset_lists_is_one_run_knows():
    """``DatasetInfo.protocols`` names pair lists that ``run -p`` builds, or identification
    (``fingerbench identify``)."""
    from bench.datasets import available

    for name, info in available().items():
        assert set(info.protocols) <= set(protocols.PROTOCOLS) | {"identification"}, name
