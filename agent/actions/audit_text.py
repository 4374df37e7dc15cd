"""One sentence per custody event type, in Chinese and English, for the audit trail.

The code (`recording.spooled`) is always shown beside the sentence, so an event type without
a sentence here still reads as its code and its fields, never as a raw JSON payload.
"""

from __future__ import annotations

from typing import Any

# type -> (zh, en); {names} are payload fields, plus {who} (operator name/id) and {rec}.
SENTENCES: dict[str, tuple[str, str]] = {
    "recording.discovered": (
        "在记录仪 {serial} 上发现文件 {source_path}",
        "found {source_path} on recorder {serial}",
    ),
    "recording.spooled": (
        "已复制到本站并校验 SHA-256",
        "copied to the station and its SHA-256 verified",
    ),
    "recording.quarantined": (
        "已复制并隔离（记录仪不在设备台账中）",
        "copied and quarantined (recorder not in the inventory)",
    ),
    "recording.accepted": (
        "{who} 接收了隔离的录像，理由：{reason}",
        "{who} accepted the quarantined recording: {reason}",
    ),
    "recording.rejected": (
        "{who} 拒收了隔离的录像，理由：{reason}",
        "{who} rejected the quarantined recording: {reason}",
    ),
    "recording.failed": ("复制失败：{reason}", "copy failed: {reason}"),
    "recording.archived": ("已归档到 {archive_ref}", "archived as {archive_ref}"),
    "recording.released": ("已从记录仪上删除（释放）", "erased from the recorder (released)"),
    "recording.exported": (
        "{who} 调取导出到 {to}，事由：{reason}",
        "{who} exported it to {to}, reason: {reason}",
    ),
    "recording.priority": ("优先级改为 {priority}", "priority set to {priority}"),
    "recording.time_corrected": (
        "按记录仪时钟偏差校正了录像时间",
        "recording times corrected for the recorder clock",
    ),
    "export.started": (
        "{who} 开始调取导出，事由：{reason}",
        "{who} started an export, reason: {reason}",
    ),
    "export.requested": (
        "{who} 申请调阅，事由：{reason}（申请号 {request}）",
        "{who} requested an export, reason: {reason} (request {request})",
    ),
    "export.approved": (
        "{who} 批准了调阅申请 {request}：{reason}",
        "{who} approved export request {request}: {reason}",
    ),
    "export.refused": (
        "{who} 拒绝了调阅申请 {request}：{reason}",
        "{who} refused export request {request}: {reason}",
    ),
    "export.returned": (
        "{who} 登记调阅 {request} 已归还：{note}",
        "{who} recorded export {request} as returned: {note}",
    ),
    "metadata.tagged": (
        "{who} 标注了案件信息（第 {version} 版）",
        "{who} tagged case metadata (version {version})",
    ),
    "deadline.recomputed": ("存储期限由 {old} 改为 {new}", "deadline changed from {old} to {new}"),
    "case.concluded": (
        "{who} 记录案件 {case_number} 执行终结日期为 {concluded_on}（第 {version} 版，"
        "归档期限 {due_on}），事由：{reason}",
        "{who} recorded case {case_number} as concluded on {concluded_on} (version {version}, "
        "case file due {due_on}), reason: {reason}",
    ),
    "spool.removed": (
        "归档确认后删除了本站缓存副本",
        "spool copy removed after the archive confirmed it",
    ),
    "integrity.violation": (
        "完整性异常：{where} 副本与 SHA-256 不符",
        "integrity violation: the {where} copy does not match its SHA-256",
    ),
    "archive.lock_extended": ("延长了归档的保留期限", "archive retention extended"),
    "key.rotated": (
        "本站签名密钥已轮换（旧密钥签署交接记录）：{old} → {new}",
        "station signing key rotated (hand-over signed by the old key): {old} -> {new}",
    ),
    "key.signing_moved": (
        "本站签名密钥已移出数据目录（公钥不变）：{fingerprint}",
        "station signing key moved out of the data dir (same public key): {fingerprint}",
    ),
    "anchor.conflict": (
        "归档中已有该事件的不同锚点，未覆盖：{key}",
        "the archive already anchors this event differently; kept, not replaced: {key}",
    ),
    "access.granted": (
        "{who} 经 {via} 获准执行 {action}",
        "{who} was allowed to {action} (via {via})",
    ),
    "access.refused": (
        "拒绝 {who} 经 {via} 执行 {action}：{reason}",
        "{who} was refused {action} (via {via}): {reason}",
    ),
    "audit.read": ("{who} 查阅了审计记录", "{who} read the audit trail"),
    "operators.changed": (
        "操作员名册已更新（{operators} 人）",
        "operator register changed ({operators} operators)",
    ),
    "operators.invalid": (
        "操作员名册有误，受控操作一律拒绝：{error}",
        "operator register invalid, gated actions refused: {error}",
    ),
    "inventory.imported": ("导入了设备台账", "device inventory imported"),
    "device.first_seen": ("首次发现记录仪 {serial}", "recorder {serial} seen for the first time"),
    "device.registered": ("记录仪 {serial} 已登记", "recorder {serial} registered"),
    "device.clock_offset": ("记录仪时钟偏差 {offset_s} 秒", "recorder clock off by {offset_s} s"),
    "device.clock_set": ("校正了记录仪时钟", "recorder clock set"),
    "interview.requested": (
        "{who} 申请开始询问录像",
        "{who} asked to start an interview recording",
    ),
    "interview.started": ("询问录像开始", "interview recording started"),
    "interview.stop_requested": (
        "{who} 申请结束询问录像",
        "{who} asked to stop the interview recording",
    ),
    "interview.stopped": ("询问录像结束", "interview recording stopped"),
    "interview.mark": ("{who} 打了标记", "{who} put a mark"),
    "interview.segment": ("询问录像片段已保存", "interview segment stored"),
    "interview.gap": ("询问录像出现中断", "gap in the interview recording"),
    "interview.failed": ("询问录像失败：{reason}", "interview recording failed: {reason}"),
    "command.mqtt": ("收到 MQTT 指令 {verb}", "MQTT command {verb} received"),
}


class _Fields(dict[str, Any]):
    def __missing__(self, key: str) -> str:
        return "-"


def sentence(event: dict[str, Any], lang: str) -> str:
    """The readable sentence of one event (its code is shown separately)."""
    payload = event.get("payload") or {}
    who = event.get("operator_name") or event.get("operator") or event.get("actor") or "-"
    fields = _Fields({k: ("-" if v is None else v) for k, v in payload.items()})
    fields["who"] = who
    pair = SENTENCES.get(event["type"])
    if pair is None:
        keys = ", ".join(
            f"{k}={v}" for k, v in sorted(payload.items()) if not isinstance(v, dict | list)
        )
        return keys or event["type"]
    template = pair[0] if lang == "zh" else pair[1]
    return template.format_map(fields)


HEADINGS = {
    "zh": ("序号", "时间（本站）", "事件代码", "说明", "操作员", "执法证号", "录像", "哈希"),
    "en": (
        "seq",
        "time (station)",
        "code",
        "what happened",
        "operator",
        "cert no",
        "recording",
        "hash",
    ),
}
