"""``fingerbench import``: external scores (1:1) or candidate lists (1:N) as an ordinary run directory."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from bench.cli.argtypes import Once, positive
from bench.cli.helpstyle import epilog
from bench.importing import FORMATS, ImportSettings
from bench.cli.summary import format_summary

log = logging.getLogger("fingerbench")

EXAMPLES = [
    "# a pair table (CSV or Parquet: probe, reference, score[, genuine]) of a closed SDK",
    "fingerbench import sdk_scores.csv -d fvc2002-db1-b --name sdk-x --higher-is-better",
    "# a published all-pairs score matrix, evaluated under the FVC protocol and under all pairs",
    "fingerbench import matrix.csv -d fvc2002-db1-b --name sourceafis -p fvc --symmetric --higher-is-better",
    "fingerbench import matrix.csv -d fvc2002-db1-b --name sourceafis -p all-pairs --symmetric --higher-is-better",
    "# a bob.bio 4-column score file of distances",
    "fingerbench import scores-dev -d my-set --format bob4 --name bob-pipeline --lower-is-better",
    "# 1:N candidate lists (probe, candidate, score[, rank]) against the gallery of a protocol CSV",
    "fingerbench import lists.csv -d fvc2002-db1-b --name sdk-x --higher-is-better -p protocol.csv -L 10",
]

NOTES = """\
Formats (--format; guessed when left out):
  pairs   CSV or Parquet with a header: probe, reference, score[, genuine][, probe_subject,
          reference_subject]; other names via --column score=NAME
  bob4    bob.bio lines "claimed_id real_id test_label score" (reference = claimed_id's model)
  bob5    bob.bio lines "claimed_id model_label real_id test_label score"
  matrix  CSV whose first row names the references and first column the probes
          (--matrix-rows reference swaps them); an empty cell is a missing comparison
  candidates  1:N candidate lists, CSV or Parquet: probe, candidate (a gallery template or
          subject; or a column reference), score[, rank]; a row with the probe alone is a
          search that returned no candidate. Becomes an identification run (CMC, FNIR@FPIR)
Protocols (-p): listed (the file's own pairs; pairs and bob files), cells (every non-empty
  off-diagonal cell of a matrix), fvc or all-pairs (picked out of the file, which must hold
  every pair; the default for a matrix), or a CSV pair list. Candidate lists: a protocol
  CSV role,id,subject[,mated] (as identify --export-protocol writes it), or 'dataset' (the
  default: from the images of --dataset-path/--data-root, impression 1 enrolled).
Subjects (who is mated with whom), first found: --subjects FILE, the images of
  --dataset-path/--data-root, the subjects the file states, --naming (default fvc:
  <finger>_<impression>), the groups joined by the file's genuine pairs. A genuine column
  must agree with them.
The run records no timing: its speed is unknown (n/a), never zero; a 1:N import's
penetration rate is unknown too.
"""


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "import", help="turn scores computed elsewhere into a run directory",
        description="Import the scores of an external matcher (a pair table, a bob.bio score file or a "
                    "score matrix) as an ordinary run directory, so that metrics, report and compare "
                    "treat it like any run; or its 1:N candidate lists as an identification run, which "
                    "metrics and report read like one 'fingerbench identify' made. The file's SHA-256 goes "
                    "into the manifest.",
        epilog=epilog(EXAMPLES, notes=NOTES),
    )
    p.add_argument("file", type=Path, help="the score file")
    p.add_argument("--dataset", "-d", action=Once, required=True,
                   help="dataset the scores are of: a registered name (see 'fingerbench list datasets') or "
                        "a plain name of your own")
    p.add_argument("--name", "-n", required=True, help="name of the external matcher, as reports show it")
    direction = p.add_mutually_exclusive_group(required=True)
    direction.add_argument("--higher-is-better", dest="higher_is_better", action="store_true", default=None,
                           help="scores are similarities")
    direction.add_argument("--lower-is-better", dest="higher_is_better", action="store_false",
                           help="scores are distances")
    p.add_argument("--format", "-f", choices=FORMATS,
                   help="file format (default: guessed from the file)")
    p.add_argument("--protocol", "-p", action=Once,
                   help="listed, cells, fvc, all-pairs or a CSV pair list (default: listed; fvc for a matrix); "
                        "candidate lists: a protocol CSV role,id,subject[,mated] or 'dataset' (default: dataset)")
    p.add_argument("--candidates", "-L", type=positive, metavar="L",
                   help="candidate lists: the list length L the system was asked for (default: the longest "
                        "list of the file); a longer list is an error")
    p.add_argument("--symmetric", action="store_true",
                   help="a pair the file lacks may be taken the other way round (reference vs probe)")
    p.add_argument("--naming", metavar="fvc|REGEX",
                   help="derive subjects from sample names: fvc (<finger>_<impression>) or a regular "
                        "expression with a group named subject (and optionally impression)")
    p.add_argument("--subjects", type=Path, metavar="CSV", help="table sample,subject")
    p.add_argument("--column", action="append", default=[], metavar="FIELD=NAME",
                   help="the column of a table that holds FIELD (pair table: probe, reference, score, genuine, "
                        "probe_subject, reference_subject; candidate list: probe, candidate, score, rank)")
    p.add_argument("--matrix-rows", choices=("probe", "reference"), default="probe",
                   help="what the rows of a matrix are")
    p.add_argument("--extractor", default="external",
                   help="name of the external feature extractor, when it is not part of the matcher")
    p.add_argument("--version", dest="matcher_version", default="unknown", help="the external matcher's version")
    p.add_argument("--dataset-path", action=Once, type=Path,
                   help="the dataset's own folder: sample names are checked against its images, whose "
                        "digests go into the manifest")
    p.add_argument("--data-root", action=Once, type=Path, help="folder holding datasets in their default sub-folders")
    p.add_argument("--out", "-o", type=Path, default=Path("runs"),
                   help="results folder; the run goes to OUT/DATASET/PROTOCOL/EXTRACTOR+NAME (candidate lists: "
                        "OUT/identify/PROTOCOL/EXTRACTOR+NAME, as identify names its runs)")
    p.add_argument("--run-dir", type=Path, help="the run directory itself (instead of the folder under --out)")
    p.add_argument("--force", action="store_true", help="replace a run already in that folder")
    return p


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)


def run(args: argparse.Namespace) -> int:
    from bench.importing import (
        CANDIDATE_COLUMNS, CANDIDATES, LISTED, PAIR_COLUMNS, ImportSettings, ScoreImportError, guess_format,
        import_scores,
    )

    columns = {}
    fields = (*PAIR_COLUMNS, *CANDIDATE_COLUMNS)
    for item in args.column:
        field, sep, name = item.partition("=")
        if not sep or field.strip() not in fields or not name.strip():
            log.error("--column %s: expected FIELD=NAME with FIELD one of %s", item, ", ".join(dict.fromkeys(fields)))
            return 2
        columns[field.strip()] = name.strip()
    try:
        fmt = args.format or (guess_format(args.file, columns) if args.file.is_file() else None)
        settings = ImportSettings(
            path=args.file, out=args.run_dir or Path(), dataset=args.dataset, matcher=args.name,
            higher_is_better=args.higher_is_better, format=fmt, protocol=args.protocol, extractor=args.extractor,
            version=args.matcher_version, symmetric=args.symmetric, naming=args.naming, subjects=args.subjects,
            columns=columns, matrix_rows=args.matrix_rows, dataset_path=args.dataset_path,
            data_root=args.data_root, force=args.force, candidates=args.candidates)
        if fmt == CANDIDATES:
            return _import_candidates(args, settings)
        if args.candidates is not None:
            log.error("--candidates applies to 1:N candidate lists (--format %s), not to %s files", CANDIDATES, fmt)
            return 2
        protocol = args.protocol or ("fvc" if fmt == "matrix" else LISTED)
        settings.protocol = protocol
        settings.out = args.run_dir or (args.out / _safe(args.dataset) / _safe(
            Path(protocol).stem if protocol.endswith(".csv") else protocol) / f"{_safe(args.extractor)}+{_safe(args.name)}")
        result = import_scores(settings)
    except ScoreImportError as exc:
        log.error("%s", exc)
        return 2
    if result.n_unused:
        log.info("%s: %d comparisons of the file are not in protocol %s and were left out",
                 args.file, result.n_unused, protocol)
    print(f"{result.run_dir}: {format_summary(result.metrics)}")
    return 0


def _import_candidates(args: argparse.Namespace, settings: ImportSettings) -> int:
    """The 1:N import: the run goes where ``fingerbench identify`` would put a run of its protocol."""
    from bench.importing import candidate_protocol, import_candidates

    protocol, images = candidate_protocol(settings)
    settings.out = args.run_dir or (args.out / "identify" / _safe(protocol.name)
                                    / f"{_safe(args.extractor)}+{_safe(args.name)}")
    result = import_candidates(settings, protocol, images)
    if result.n_unused:
        log.info("%s: %d candidates named a subject already listed for their probe (through another template); "
                 "each subject keeps its best score", args.file, result.n_unused)
    print(f"{result.run_dir}: {format_summary(result.metrics)}; penetration and speed unknown (imported)")
    return 0
