"""Parses a Prometheus text exposition (stdin) with prometheus_client's parser, the reference
Python implementation, and prints its metric families as JSON (values as strings, since +Inf
and NaN are not JSON). A malformed exposition makes the parser raise: exit status 1.
Used by tests/tests/observability.rs."""

import json
import sys

from prometheus_client.parser import text_string_to_metric_families

families = [
    {
        "name": family.name,
        "type": family.type,
        "documentation": family.documentation,
        "samples": [
            {"name": s.name, "labels": s.labels, "value": repr(float(s.value))}
            for s in family.samples
        ],
    }
    for family in text_string_to_metric_families(sys.stdin.read())
]
json.dump(families, sys.stdout)
