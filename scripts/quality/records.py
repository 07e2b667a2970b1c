"""Joins a CSV export of the raw NPPES, AMA and CRM records (pharma-mesh query --format csv) with the truth's
source map, into the records file splink_run.py reads.
    python records.py EXPORT.csv TRUTH/source_map.csv OUT.csv
"""
import csv
import sys

truth = {}
with open(sys.argv[2]) as f:
    for row in csv.DictReader(f):
        truth[(row["source"], row["source_id"])] = row["truth_id"]
with open(sys.argv[1]) as f, open(sys.argv[3], "w", newline="") as out:
    rows = csv.DictReader(f)
    w = csv.DictWriter(out, fieldnames=rows.fieldnames + ["truth_id"])
    w.writeheader()
    for row in rows:
        person = truth.get((row["source"], row["source_id"]))
        if person is not None:
            row["truth_id"] = person
            w.writerow(row)
