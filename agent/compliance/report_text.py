"""Headings and messages of `evidence-agent report` in Chinese and English.

The JSON report keeps English keys and status codes in both languages (it is for programs);
the table and the CSV (for people and spreadsheets) use these words.
"""

from __future__ import annotations

import locale
import os

LANGS = ("zh", "en")

TEXT: dict[str, dict[str, str]] = {
    "en": {
        "title": "Compliance report, station {station}",
        "period": "period {start} to {end} ({tz})",
        "all_time": "all recordings ({tz})",
        "unit_filter": "unit {unit}",
        "generated": "generated {at}",
        "summary": "Deadlines (stored within the rule's time)",
        "metric": "metric",
        "value": "value",
        "total": "recordings",
        "untagged": "untagged (no case number)",
        "untagged_overdue": "untagged longer than {hours:g} h",
        "not_docked_count": "recorders not docked",
        "units": "Recorders per unit (1 per {ratio} officers unless set per unit)",
        "recorders": "Recorders not docked for {days} working days",
        "recordings": "Recordings",
        "problem_recordings": "Recordings needing attention",
        "none": "none",
        "problems": "Problems",
        "yes": "yes",
        "no": "no",
        "no_roster": "no roster configured (roster.file): the ratio is not computed",
        # columns
        "id": "id",
        "ref": "ref",
        "serial": "recorder",
        "vendor": "vendor",
        "officer": "officer",
        "unit": "unit",
        "unit_name": "unit name",
        "start": "start",
        "end": "end",
        "state": "state",
        "deadline": "deadline",
        "deadline_met_at": "stored at",
        "deadline_status": "deadline status",
        "case_number": "case number",
        "category": "category",
        "tagged": "tagged",
        "active_officers": "active officers",
        "recorders_counted": "recorders counted",
        "ratio": "officers per recorder",
        "required": "required",
        "compliant": "compliant",
        "not_counted": "not counted (why)",
        "last_seen": "last seen",
        "limit": "due to dock by",
        "section": "section",
        # statuses
        "met": "met",
        "met_late": "met late",
        "open": "open",
        "at_risk": "at risk",
        "missed": "missed",
        "no_deadline": "no deadline",
        "repair": "repair",
        "lost": "lost",
        "retired": "retired",
        "not_seen": "not seen for {days} days",
        # case files (seed 001: archived within 30 days of the case's conclusion)
        "cases": "Case files (due {days} days after the case concluded)",
        "cases_due": "case files due",
        "cases_overdue": "case files overdue",
        "concluded_on": "concluded",
        "due_on": "file due",
        "case_status": "status",
        "recordings_n": "recordings",
        "not_archived": "not archived",
        "case_due": "due",
        "case_overdue": "overdue",
        "case_archived": "archived",
        "case_no_recordings": "no recordings",
    },
    "zh": {
        "title": "合规统计报告（采集站 {station}）",
        "period": "统计期间 {start} 至 {end}（{tz}）",
        "all_time": "全部记录（{tz}）",
        "unit_filter": "单位 {unit}",
        "generated": "生成时间 {at}",
        "summary": "存储期限（按规则时限存储）",
        "metric": "指标",
        "value": "数量",
        "total": "音像记录",
        "untagged": "未标注（无案件编号）",
        "untagged_overdue": "超过 {hours:g} 小时未标注",
        "not_docked_count": "未按时接入的执法记录仪",
        "units": "执法记录仪配备（默认每 {ratio} 名执法人员一台）",
        "recorders": "超过 {days} 个工作日未接入的执法记录仪",
        "recordings": "音像记录",
        "problem_recordings": "需要处理的音像记录",
        "none": "无",
        "problems": "问题",
        "yes": "是",
        "no": "否",
        "no_roster": "未配置人员名单（roster.file），不计算配备比例",
        "id": "记录编号",
        "ref": "引用",
        "serial": "记录仪编号",
        "vendor": "厂商",
        "officer": "警员编号",
        "unit": "单位",
        "unit_name": "单位名称",
        "start": "开始时间",
        "end": "结束时间",
        "state": "状态",
        "deadline": "存储期限",
        "deadline_met_at": "存储时间",
        "deadline_status": "期限状态",
        "case_number": "案件编号",
        "category": "类别",
        "tagged": "已标注",
        "active_officers": "在岗执法人员",
        "recorders_counted": "在用记录仪",
        "ratio": "每台人数",
        "required": "应配数量",
        "compliant": "是否达标",
        "not_counted": "未计入（原因）",
        "last_seen": "最后接入",
        "limit": "应接入期限",
        "section": "部分",
        "met": "按期存储",
        "met_late": "逾期存储",
        "open": "未到期",
        "at_risk": "即将逾期",
        "missed": "已逾期",
        "no_deadline": "无期限",
        "repair": "维修",
        "lost": "丢失",
        "retired": "报废",
        "not_seen": "{days} 天未接入",
        "cases": "案卷归档（执行终结之日起 {days} 日内）",
        "cases_due": "待归档案卷",
        "cases_overdue": "逾期未归档案卷",
        "concluded_on": "执行终结日期",
        "due_on": "归档期限",
        "case_status": "状态",
        "recordings_n": "音像记录",
        "not_archived": "未归档",
        "case_due": "待归档",
        "case_overdue": "已逾期",
        "case_archived": "已归档",
        "case_no_recordings": "无音像记录",
    },
}


def default_lang() -> str:
    """zh when the environment's locale is Chinese, else en."""
    for var in ("LC_ALL", "LC_MESSAGES", "LANG"):
        value = os.environ.get(var)
        if value:
            return "zh" if value.lower().startswith("zh") else "en"
    loc = locale.getlocale()[0] or ""
    return "zh" if loc.lower().startswith("zh") else "en"


def t(lang: str, key: str, **kw: object) -> str:
    text = TEXT[lang].get(key, TEXT["en"].get(key, key))
    return text.format(**kw) if kw else text


def reason(lang: str, why: str) -> str:
    """A ratio's not-counted reason (repair, lost, retired, 'not seen for N days')."""
    if why.startswith("not seen for "):
        return t(lang, "not_seen", days=why.split()[3])
    return t(lang, why) if why in TEXT["en"] else why
