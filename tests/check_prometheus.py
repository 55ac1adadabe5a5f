#!/usr/bin/python3
"""Checks a /metrics page strictly and prints its samples, one `name{labels} value` a line.

Usage: check_prometheus.py FILE. Parses FILE with prometheus_client's text-format parser (which
raises on a malformed line), then also requires: a TYPE for every family, counters' samples
named *_total, histogram buckets cumulative and ending at le="+Inf" equal to _count. Exit 1 with
a message on the first failure. Called by the sales e2e tests (test_lambda_e2e.cpp)."""
import math
import sys

from prometheus_client.parser import text_string_to_metric_families


def fail(msg):
    print("check_prometheus: " + msg, file=sys.stderr)
    sys.exit(1)


def labels_text(labels):
    return "{" + ",".join(f'{k}="{v}"' for k, v in sorted(labels.items())) + "}" if labels else ""


def main():
    text = open(sys.argv[1], encoding="utf-8").read()
    typed = {line.split()[2] for line in text.splitlines() if line.startswith("# TYPE ")}
    try:
        families = list(text_string_to_metric_families(text))
    except ValueError as e:
        fail(f"does not parse: {e}")
    for family in families:
        if family.type == "unknown":
            fail(f"{family.name}: no TYPE line")
        if family.type == "counter":
            if family.name + "_total" not in typed:
                fail(f"{family.name}: counter TYPE not declared with _total")
            if any(s.name != family.name + "_total" for s in family.samples):
                fail(f"{family.name}: a counter sample not named {family.name}_total")
        if family.type == "histogram":
            last, inf, count = -1.0, None, None
            for s in family.samples:
                if s.name.endswith("_bucket"):
                    if s.value < last:
                        fail(f"{family.name}: buckets not cumulative at le={s.labels['le']}")
                    last = s.value
                    if math.isinf(float(s.labels["le"])):
                        inf = s.value
                elif s.name.endswith("_count"):
                    count = s.value
            if inf is None or inf != count:
                fail(f"{family.name}: le=\"+Inf\" bucket {inf} is not _count {count}")
        for s in family.samples:
            print(f"{s.name}{labels_text(s.labels)} {s.value:g}" if not math.isnan(s.value)
                  else f"{s.name}{labels_text(s.labels)} NaN")


main()
