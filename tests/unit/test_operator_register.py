"""The operator register: GBK/UTF-8 CSV, roles in English or Chinese, errors naming line/column."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.access.register import RegisterError, load_register

HEADER = "officer_id,login,name,roles,cert_no,active\n"


def test_gbk_file_with_chinese_roles_loads(tmp_path: Path) -> None:
    path = tmp_path / "operators.csv"
    text = (
        HEADER
        + "310001,zhangsan,张三,执法人员;保管员,环执字310001,是\nS1,zhao,赵六,监督员,环执字S1,否\n"
    )
    path.write_bytes(text.encode("gbk"))
    ops, digest = load_register(path)
    assert [(o.officer_id, o.roles, o.active) for o in ops] == [
        ("310001", ("officer", "custodian"), True),
        ("S1", ("supervisor",), False),
    ]
    assert ops[0].name == "张三" and ops[0].cert_no == "环执字310001" and len(digest) == 64
    assert "pin_hash" not in ops[0].public()


@pytest.mark.parametrize(
    ("body", "where"),
    [
        ("1,zhang,张三,boss,C1,1\n", "line 2, column 'roles': role 'boss'"),
        ("1,zhang,张三,officer,C1,maybe\n", "line 2, column 'active'"),
        ("1,Zhang San,张三,officer,C1,1\n", "line 2, column 'login'"),
        ("1,zhang,张三,officer,C1,1\n2,zhang,李四,officer,C2,1\n", "line 3, column 'login'"),
        ("1,zhang,张三,officer,,1\n", "line 2, column 'cert_no': empty"),
    ],
)
def test_errors_name_line_and_column(tmp_path: Path, body: str, where: str) -> None:
    path = tmp_path / "operators.csv"
    path.write_text(HEADER + body, encoding="utf-8")
    with pytest.raises(RegisterError) as exc:
        load_register(path)
    assert str(exc.value).startswith(f"{path}: ") and where in str(exc.value)


def test_unknown_or_missing_columns_are_errors(tmp_path: Path) -> None:
    path = tmp_path / "operators.csv"
    path.write_text("officer_id,login,name,roles,cert_no,active,password\n", encoding="utf-8")
    with pytest.raises(RegisterError, match="line 1, column 'password': unknown column"):
        load_register(path)
    path.write_text("officer_id,login,name,roles,active\n", encoding="utf-8")
    with pytest.raises(RegisterError, match="line 1, column 'cert_no': missing"):
        load_register(path)
    with pytest.raises(RegisterError, match="operators.file"):
        load_register(tmp_path / "absent.csv")


def test_check_config_reports_a_broken_register(make_station) -> None:  # type: ignore[no-untyped-def]
    st = make_station()
    ok = st.cli("check-config")
    assert ok.returncode == 0, ok.stderr
    (st.dir / "operators.csv").write_text(HEADER + "1,zhang,张三,chief,C1,1\n", encoding="utf-8")
    bad = st.cli("check-config")
    assert bad.returncode == 78
    assert "operators.file:" in bad.stderr and "line 2, column 'roles'" in bad.stderr
