"""The console's words, Chinese (default) and English, and the bay reasons in plain words."""

from __future__ import annotations

from typing import Any

WORDS: dict[str, tuple[str, str]] = {
    "title": ("执法记录仪采集站", "Recorder dock"),
    "bays": ("采集位", "Bays"),
    "mine": ("我的录像", "My recordings"),
    "login": ("登录", "Log in"),
    "logout": ("退出", "Log out"),
    "officer_id": ("警员编号", "Officer id"),
    "pin": ("密码 (PIN)", "PIN"),
    "wrong_pin": ("警员编号或密码错误", "Wrong officer id or PIN"),
    "wait": ("请等待 {s} 秒后再试", "Wait {s} s before the next try"),
    "no_bays": ("没有插入的记录仪", "No recorder docked"),
    "copying": ("正在复制", "Copying"),
    "safe": ("可以拔出", "Safe to undock"),
    "attention": ("需要处理", "Needs attention"),
    "erase_later": (
        "已复制并校验；归档后在下次插入时清除记录仪",
        "Copied and verified; the recorder is erased at a later dock, once archived",
    ),
    "files": ("文件 发现/已复制/已校验", "Files found / copied / verified"),
    "current": ("当前文件", "This file"),
    "battery": ("电量", "Battery"),
    "charging": ("充电中", "charging"),
    "officer": ("警员", "Officer"),
    "spool": ("存储空间", "Spool"),
    "spool_low": ("存储空间不足", "Spool low"),
    "archive_ok": ("归档可达", "Archive reachable"),
    "archive_down": ("归档不可达", "Archive unreachable"),
    "clock_ok": ("时钟已同步", "Clock synchronised"),
    "clock_bad": ("时钟未同步", "Clock not synchronised"),
    "at_risk": ("期限临近", "Deadlines at risk"),
    "missed": ("已逾期", "missed"),
    "gate_down": ("无法连接采集服务", "The dock service is not reachable"),
    "start": ("开始时间", "Start"),
    "duration": ("时长", "Duration"),
    "state": ("状态", "State"),
    "case_number": ("案件编号", "Case number"),
    "capture_place": ("采集地点", "Capture place"),
    "proves": ("证明对象", "What it proves"),
    "importance": ("重要程度", "Importance"),
    "reason": ("修改原因", "Reason for a change"),
    "tag": ("标注所选", "Tag selected"),
    "tagged": ("已标注 {n} 个录像", "{n} recordings tagged"),
    "none_selected": ("请选择录像", "Select recordings first"),
    "no_recordings": ("没有您的录像", "No recordings of yours"),
    "lang_other": ("English", "中文"),
    "refused": ("请求被拒绝", "Refused"),
    "held": ("隔离待处理", "Quarantined"),
    "held_none": ("没有待处理的隔离录像", "Nothing held in quarantine"),
    "accept": ("接收", "Accept"),
    "reject": ("拒绝", "Reject"),
    "decision_reason": ("处理理由（必填）", "Reason (required)"),
    "decided": ("已处理 {n} 个录像", "{n} recordings decided"),
    "serial": ("记录仪编号", "Recorder"),
    "approvals_later": (
        "调阅审批请见“调阅审批”页",
        "Retrieval approvals are on the Approvals page",
    ),
    "approvals": ("调阅审批", "Approvals"),
    "approvals_pending": ("待审批的调阅申请", "Retrieval requests awaiting you"),
    "approvals_none": ("没有待审批的调阅申请", "No retrieval request awaits you"),
    "my_requests": ("我的调阅申请", "My retrieval requests"),
    "my_requests_none": ("您没有调阅申请", "You have no retrieval requests"),
    "requester": ("申请人", "Requester"),
    "requested_at": ("申请时间", "Requested"),
    "recordings": ("录像", "Recordings"),
    "request_reason": ("调阅事由", "Reason"),
    "confidentiality": ("密级", "Confidentiality"),
    "confidential": ("涉密", "Confidential"),
    "not_confidential": ("非密", "Not confidential"),
    "decision_note": ("审批意见（拒绝时必填）", "Note (required to refuse)"),
    "approve": ("批准", "Approve"),
    "refuse": ("不予批准", "Refuse"),
    "refuse_needs_reason": ("不予批准须填写理由", "A refusal needs a reason"),
    "decided_by": ("审批人", "Decided by"),
    "first_pin": ("首次设置密码", "Set your PIN (first use)"),
    "first_pin_help": (
        "请输入管理员提供的一次性验证码，并设置新的密码（4-12位数字）",
        "Enter the one-time code from your admin and choose a new PIN (4-12 digits)",
    ),
    "one_time_code": ("一次性验证码", "One-time code"),
    "new_pin": ("新密码", "New PIN"),
    "new_pin_again": ("再次输入新密码", "New PIN again"),
    "pins_differ": ("两次输入的密码不一致", "The two PINs differ"),
    "wrong_code": ("警员编号或验证码错误（或已过期）", "Wrong officer id or code (or it expired)"),
}

REASONS: dict[str, tuple[str, str]] = {
    "quarantined": (
        "不在设备清单中，录像已隔离待保管员处理",
        "Not in the inventory: held for a custodian",
    ),
    "unknown_recorder": ("无法识别的记录仪", "Recorder not recognised"),
    "failed": ("有文件复制失败，正在重试", "Some files failed to copy; retrying"),
    "clock_off": ("记录仪时钟偏差过大", "Recorder clock is off"),
    "device_error": ("记录仪报告错误", "The recorder reported an error"),
}


STATES: dict[str, tuple[str, str]] = {
    "discovered": ("待复制", "waiting"),
    "copying": ("正在复制", "copying"),
    "spooled": ("已复制校验", "copied and verified"),
    "archived": ("已归档", "archived"),
    "released": ("已归档，记录仪已清除", "archived, erased from the recorder"),
    "failed": ("复制失败，重试中", "failed, retrying"),
    "quarantined": ("已隔离", "quarantined"),
}


EXPORT_STATES: dict[str, tuple[str, str]] = {
    "requested": ("待审批", "awaiting approval"),
    "approved": ("已批准", "approved"),
    "refused": ("不予批准", "refused"),
    "executed": ("已调取", "executed"),
    "returned": ("已归还", "returned"),
}


def words(lang: str) -> dict[str, Any]:
    i = 0 if lang == "zh" else 1
    out: dict[str, Any] = {k: v[i] for k, v in WORDS.items()}
    out["reasons"] = {k: v[i] for k, v in REASONS.items()}
    out["states"] = {k: v[i] for k, v in STATES.items()}
    out["export_states"] = {k: v[i] for k, v in EXPORT_STATES.items()}
    return out
