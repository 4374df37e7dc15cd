"""The printable per-recording audit report (`audit --recording X --html FILE`).

One self-contained HTML page: the recording and its SHA-256, every custody event with its
sentence, code, station time, operator, 执法证号 and hash, and the signed checkpoint that
covers the last event, so a printed copy can be checked against the station's public key.
"""

from __future__ import annotations

import html
import json
from typing import Any

from agent.actions.audit import rows
from agent.actions.audit_text import HEADINGS

TITLE = {"zh": "录像审计报告", "en": "Recording audit report"}
NO_CHECKPOINT = {
    "zh": "尚无覆盖最后事件的签名检查点（守护进程每分钟签署一次）。",
    "en": "No signed checkpoint covers the last event yet (the daemon signs one a minute).",
}
_CSS = (
    "body{font-family:'Noto Sans CJK SC',sans-serif;font-size:11pt;margin:2em}"
    "table{border-collapse:collapse;width:100%}td,th{border:1px solid #999;padding:3px;"
    "vertical-align:top}code{font-size:8pt;word-break:break-all}"
    "@media print{body{margin:0}}"
)


def _esc(value: Any) -> str:
    return html.escape("" if value is None else str(value))


def render(doc: dict[str, Any], lang: str) -> str:
    rec = doc.get("recording") or {}
    head = HEADINGS[lang]
    out = [
        "<!DOCTYPE html>",
        f'<html lang="{"zh-CN" if lang == "zh" else "en"}"><head><meta charset="utf-8">',
        f"<title>{TITLE[lang]} {_esc(rec.get('id'))}</title><style>{_CSS}</style></head><body>",
        f"<h1>{TITLE[lang]}</h1>",
        "<table>",
    ]
    for key in ("id", "sha256", "size", "serial", "officer_id", "unit_id", "source_path",
                "start", "end", "state", "archive_ref"):  # fmt: skip
        out.append(f"<tr><th>{key}</th><td><code>{_esc(rec.get(key))}</code></td></tr>")
    out.append(f"<tr><th>station</th><td>{_esc(doc.get('station'))}</td></tr></table>")
    out.append("<h2>" + ("托管事件" if lang == "zh" else "Custody events") + "</h2><table><tr>")
    out += [f"<th>{_esc(h)}</th>" for h in head if h not in ("录像", "recording")]
    out.append("</tr>")
    for r in rows(doc, lang):
        cells = r[:6] + [r[7]]
        out.append(
            "<tr>"
            + "".join(
                f"<td><code>{_esc(c)}</code></td>" if i in (2, 6) else f"<td>{_esc(c)}</td>"
                for i, c in enumerate(cells)
            )
            + "</tr>"
        )
    out.append("</table>")
    out.append("<h2>" + ("签名检查点" if lang == "zh" else "Signed checkpoint") + "</h2>")
    cp = doc.get("checkpoint")
    if cp is None:
        out.append(f"<p>{NO_CHECKPOINT[lang]}</p>")
    else:
        statement = json.dumps(cp["statement"], ensure_ascii=False, sort_keys=True)
        out.append(
            f"<p>statement: <code>{_esc(statement)}</code></p>"
            f"<p>signature (ed25519): <code>{_esc(cp['signature'])}</code></p>"
            f"<p>key: <code>{_esc(cp['key_fingerprint'])}</code></p>"
        )
    out.append("</body></html>")
    return "\n".join(out)
