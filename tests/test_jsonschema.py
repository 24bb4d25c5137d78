"""The committed JSON Schema equals the generated one, and every shipped spec satisfies it
through the independent jsonschema library (what editors use)."""

from __future__ import annotations

import json

import jsonschema
import pytest
import yaml

from ktg_dsl.spec.jsonschema import schema_text, spec_json_schema

from .conftest import ROOT, base_spec

COMMITTED = ROOT / "schemas" / "ktg-spec.schema.json"


def test_committed_schema_is_up_to_date() -> None:
    assert COMMITTED.read_text() == schema_text(builtin_only=True), (
        "schemas/ktg-spec.schema.json is stale: run `ktg schema -o schemas/ktg-spec.schema.json`"
    )


def test_schema_is_a_valid_draft_2020_12_schema() -> None:
    jsonschema.Draft202012Validator.check_schema(spec_json_schema(builtin_only=True))


@pytest.fixture(scope="module")
def committed_validator() -> jsonschema.Draft202012Validator:
    """One validator of the committed schema (``jsonschema.validate`` checks the schema itself
    on every call, most of a second each; test_schema_is_a_valid_draft_2020_12_schema does)."""
    return jsonschema.Draft202012Validator(json.loads(COMMITTED.read_text()))


@pytest.mark.parametrize("path", sorted((ROOT / "specs").rglob("*.yaml")), ids=lambda p: p.name)
def test_shipped_specs_satisfy_the_schema(path, committed_validator) -> None:
    committed_validator.validate(yaml.safe_load(path.read_text()))


def test_an_empty_self_supervised_section_is_refused_by_the_schema_too(
    committed_validator,
) -> None:
    """`self_supervised:` with nothing after it is null, which validate refuses (write {})."""
    data = yaml.safe_load((ROOT / "specs" / "digits-simclr.yaml").read_text())
    committed_validator.validate({**data, "self_supervised": {}})
    with pytest.raises(jsonschema.ValidationError):
        committed_validator.validate({**data, "self_supervised": None})


@pytest.mark.slow
def test_schema_rejects_what_pydantic_rejects() -> None:
    schema = spec_json_schema(builtin_only=True)
    bad = [
        base_spec(train={"epochs": 0}),
        base_spec(train={"epochs": 3, "precison": "bf16"}),
        base_spec(defaults={"loss": {"type": "kl", "temperature": 0}}),
        base_spec(defaults={"optimizer": {"type": "sgd", "momentun": 0.9}}),
        base_spec(nodes={"a": {"model": "resnet23"}}),
    ]
    for data in bad:
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(data, schema)
    jsonschema.validate(base_spec(), schema)


def test_spec_reference_doc_is_up_to_date() -> None:
    from ktg_dsl.spec.reference import reference_markdown

    assert (ROOT / "docs" / "spec-reference.md").read_text() == reference_markdown(), (
        "docs/spec-reference.md is stale: run `ktg schema --reference -o docs/spec-reference.md`"
    )
