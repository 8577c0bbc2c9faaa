"""Validates the OpenAPI document the test suite saved (see tests/api/abuse.rs)."""
import json
import sys

from openapi_spec_validator import validate

with open(sys.argv[1]) as f:
    validate(json.load(f))
print("the OpenAPI document is valid OpenAPI 3.1")
