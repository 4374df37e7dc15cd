"""The record's context fields: choices with Chinese labels, what may leave the station, and
the party's custody digest (agent.tagging.context_fields)."""

from __future__ import annotations

import pytest

from agent.core.errors import TagError
from agent.tagging import context_fields as cf


def test_choices_take_codes_and_chinese_labels_and_name_the_valid_ones() -> None:
    assert cf.check_confidentiality("国家秘密") == "state_secret"
    assert cf.check_confidentiality("Personal_Privacy") == "personal_privacy"
    assert cf.check_stage("行政强制措施") == "compulsory_measure"
    with pytest.raises(TagError, match=r"stage 'raid' is not one of .*hearing \(听证\)"):
        cf.check_stage("raid")
    assert cf.display("stage", "hearing") == "hearing (听证)"
    assert cf.display("party", None) == "-"


def test_only_ledger_only_fields_are_dropped_and_confidential_means_any_category() -> None:
    doc = {"case_number": "C1", "party": "某公司", "confidentiality": "none"}
    assert cf.public(doc) == {"case_number": "C1", "confidentiality": "none"}
    assert cf.public(None) == {}
    assert not cf.is_confidential(doc) and not cf.is_confidential({})
    assert cf.is_confidential({"confidentiality": "commercial_secret"})


def test_the_party_digest_is_salted_and_checkable_with_the_salt() -> None:
    a, b = cf.new_salt(), cf.new_salt()
    assert a != b
    one = cf.custody_fields({"party": "某公司", "stage": "hearing"}, a)
    assert one["stage"] == "hearing" and one["party"].startswith("sha256:")
    assert one == cf.custody_fields({"party": "某公司", "stage": "hearing"}, a)
    assert one["party"] != cf.custody_fields({"party": "某公司"}, b)["party"]
    assert "某公司" not in str(one)
    # A document without a party (every version before this release) is left as it is.
    assert cf.custody_fields({"case_number": "C1"}, None) == {"case_number": "C1"}
