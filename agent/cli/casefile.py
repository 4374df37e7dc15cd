"""`evidence-agent case conclude|show`: a case's conclusion date and its case file.

`conclude` asks the daemon's gate (custodian); `show` reads the ledger directly, as `report`
does (the data dir's owner and root).
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from typing import Any

Add = Callable[[str, Callable[[argparse.Namespace], int], str], argparse.ArgumentParser]

_STATUS = {
    "en": {
        "due": "due",
        "overdue": "OVERDUE",
        "archived": "archived",
        "no_recordings": "no recordings",
        "not_concluded": "not concluded",
    },
    "zh": {
        "due": "待归档",
        "overdue": "已逾期",
        "archived": "已归档",
        "no_recordings": "无音像记录",
        "not_concluded": "未结案",
    },
}


def cmd_case(args: argparse.Namespace) -> int:
    from agent.config import loader as config_mod

    cfg = config_mod.load(args.config)
    if args.verb == "conclude":
        from agent.cli import client

        params = {
            "case_number": args.case_number,
            "date": args.date,
            "reason": args.reason,
            "operator": args.operator,
        }
        doc = client.call(cfg, "case.conclude", params)
    else:
        from agent.compliance import casefile
        from agent.station.context import Context

        doc = casefile.show(Context(cfg), args.case_number)
    if args.json:
        print(json.dumps(doc, ensure_ascii=False, indent=2))
    else:
        _print(doc, args.lang or "en")
    return 0


def _print(doc: dict[str, Any], lang: str) -> None:
    words = _STATUS[lang]
    status = words.get(doc["status"], doc["status"])
    if doc.get("concluded_on") is None:
        print(f"{doc['case_number']}: {status}")
    else:
        head = "结案日期" if lang == "zh" else "concluded"
        due = "归档期限" if lang == "zh" else "case file due"
        print(
            f"{doc['case_number']}: {head} {doc['concluded_on']}, {due} {doc['due_on']}"
            f" ({status}; {doc['not_archived']}/{doc['recordings']} not archived)"
        )
    if "changed" in doc and not doc["changed"]:
        print("no change: the case already concluded on that date")
    for v in doc.get("history", []):
        print(f"  v{v['version']} {v['concluded_on']} by {v['actor']} ({v['via']}): {v['reason']}")
    for r in doc.get("recording_list", []):
        print(f"  {r['id']} {r['state']}{'' if r['archived'] else ' (not archived)'}")


def add_parsers(add: Add) -> None:
    sp = add("case", cmd_case, "a case's conclusion date and its case file (30 days to archive)")
    verbs = sp.add_subparsers(dest="verb", required=True, metavar="VERB")
    co = verbs.add_parser("conclude", help="set the date the case concluded (custodian)")
    co.add_argument("case_number", metavar="CASE_NO", help="案件编号")
    co.add_argument("--date", required=True, help="执行终结之日, YYYY-MM-DD (station time)")
    co.add_argument("--reason", required=True, help="why (kept in the custody log)")
    co.add_argument("--operator", help="optional; must be you (you are who you log in as)")
    co.add_argument("--json", action="store_true")
    co.add_argument("--lang", choices=("zh", "en"))
    sh = verbs.add_parser("show", help="the case record, its history and its recordings")
    sh.add_argument("case_number", metavar="CASE_NO", help="案件编号")
    sh.add_argument("--json", action="store_true")
    sh.add_argument("--lang", choices=("zh", "en"))
