"""The dashboard's words in English and Japanese, and which of them a request gets.

One flat dict per locale; a key missing from a locale falls back to English, and a
test keeps both catalogues on the same keys. The words of each CSM event kind sit
together in `EVENT_WORDS`, both languages side by side, and enter the catalogues as
`action_<kind>`, `kind_<kind>` and `tl_<kind>`. Text written by the workflow itself
(timeline summaries, refusal reasons) stays as the workflow wrote it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

Locale = Literal["en", "ja"]
LOCALES: tuple[Locale, ...] = ("en", "ja")
DEFAULT_LOCALE: Locale = "en"
# ?lang= is remembered here so every later page keeps the choice.
LANG_COOKIE = "liftoff_lang"

EN: dict[str, str] = {
    # Frame
    "nav_customers": "My customers",
    "nav_all_customers": "Customers",
    "nav_cohort": "Cohort",
    "sign_out": "Sign out",
    "sign_out_question": "Sign out of Liftoff on this browser?",
    "role_csm": "CSM",
    "role_lead": "CS leader",
    "role_ops": "CS operations",
    "skip_to_content": "Skip to content",
    # Sign-in
    "login_title": "Sign in",
    "login_intro": (
        "Paste your Liftoff API token. CS operations creates one for you with "
        "“liftoff token create”."
    ),
    "login_token": "API token",
    "login_submit": "Sign in",
    "login_empty": "Paste a token first.",
    "login_unknown": "This token is unknown or has been revoked.",
    "login_ingest": (
        "An ingest token only sends usage data: sign in with a csm, lead or ops token."
    ),
    "signed_out": "You are signed out.",
    # My customers
    "customers_title": "My customers",
    "all_customers_title": "All customers",
    "filter_csm": "CSM",
    "filter_all": "All CSMs",
    "filter_apply": "Show",
    "summary_customers": "{n} in onboarding",
    "summary_stuck": "{n} stuck in setup",
    "summary_stalled": "{n} stalled",
    "summary_tasks": "{n} open tasks",
    "col_customer": "Customer",
    "col_attention": "Attention",
    "col_days_in_stage": "In stage",
    "col_next_due": "Next due",
    "col_tasks": "Open tasks",
    "col_csm": "CSM",
    "col_started": "Started",
    "flag_stuck": "Stuck in setup",
    "flag_stuck_hint": "No usage data has arrived: device or integration?",
    "flag_stalled": "Stalled",
    "flag_stalled_hint": "Usage is below the stall rules",
    "flag_paused": "Paused since {since} ({reason})",
    "flag_paused_hint": "No emails, reminders or verdicts until resumed",
    "flag_paused_until": "resumes on {day}",
    "no_customers": "No customers to show.",
    "ended_customers": "Ended ({n})",
    "col_ended": "Ended",
    "page_shown": "{first}–{last} of {total}",
    "page_previous": "Previous",
    "page_next": "Next",
    "overdue": "overdue",
    # Stages
    "stage_handoff": "Handoff",
    "stage_kickoff": "Kickoff",
    "stage_training": "Training",
    "stage_adoption": "Adoption",
    "stage_completion_review": "Completion review",
    "stage_onboarded": "Onboarded",
    "stage_failed": "Failed",
    "stage_cancelled": "Cancelled",
    # What the workflow waits for next
    "due_remind_csm": "CSM reminder",
    "due_escalate_to_leader": "Escalation to leader",
    "due_measure": "Weekly measurement",
    "due_momentum": "Momentum meeting",
    "due_deadline": "Deadline",
    "due_campaign_step": "Step email",
    "due_resume": "Resume",
    "due_task_overdue": "Task due",
    # Durations and relative times
    "unit_d": "{n} d",
    "unit_h": "{n} h",
    "unit_min": "{n} min",
    "unit_s": "{n} s",
    "in_future": "in {d}",
    "in_past": "{d} ago",
    # Customer page
    "since": "since {when}",
    "label_csm": "CSM",
    "label_leader": "CS leader",
    "label_playbook": "Playbook",
    "record_only": (
        "Temporal no longer holds this onboarding (it ended and its workflow's retention "
        "ran out): this page shows Liftoff's records of it, and nothing can be recorded."
    ),
    "label_local_time": "Customer's time",
    "local_time_hint": "Times on this page are the customer's local time ({zone}).",
    "weekday_0": "Mon",
    "weekday_1": "Tue",
    "weekday_2": "Wed",
    "weekday_3": "Thu",
    "weekday_4": "Fri",
    "weekday_5": "Sat",
    "weekday_6": "Sun",
    "label_in_stage": "In stage",
    "label_next_due": "Next due",
    "label_started": "Started",
    "section_measurement": "Weekly measurement",
    "chart_seats": "Active seats",
    "chart_actions": "Key actions per week",
    "legend_criterion": "completion criterion",
    "legend_stall": "stall threshold",
    "chart_week": "Week {n}",
    "no_measurement": "No measurement yet: the first one comes a week into adoption.",
    "verdict_caption": "Week {n}, {start} – {end}",
    "col_criterion": "Criterion",
    "col_observed": "This week",
    "col_threshold": "Needed",
    "col_weeks": "Weeks running",
    "col_met": "Met",
    "criteria_met": "Completion criteria met",
    "criteria_not_met": "Not all criteria met yet",
    "yes": "yes",
    "no": "no",
    "metric_active_seat_ratio": "Active seat ratio",
    "metric_active_users": "Active users",
    "metric_key_actions": "Key actions",
    "metric_events": "Events",
    "metric_quota_consumption": "Quota consumption",
    "metric_goals_agreed": "Goals agreed",
    "metric_email_opens": "Email opens",
    "metric_email_clicks": "Email clicks",
    "section_timeline": "Timeline",
    "timeline_empty": "Nothing recorded yet.",
    "section_emails": "Emails",
    "emails_empty": "No emails sent yet.",
    "col_when": "When",
    "col_email": "Email",
    "col_to": "To",
    "col_status": "Status",
    "col_fate": "What happened",
    "email_sent": "sent",
    "email_sending": "sending",
    "email_failed": "failed",
    "section_tasks": "Open tasks",
    "tasks_empty": "No open tasks.",
    "task_due": "due {when}",
    "task_done": "Mark done",
    "field_note": "Note (optional)",
    "section_overrides": "Adjusted for this customer",
    "overrides_empty": "The playbook's values apply.",
    "overrides_saved": "Adjustments saved and recorded on the timeline.",
    "overrides_hint": (
        "The whole set: emptied fields follow the playbook again. One item per line."
    ),
    "col_setting": "Setting",
    "col_playbook_value": "Playbook",
    "col_customer_value": "This customer",
    "action_adjust": "Adjust the playbook for this customer",
    "field_overrides_thresholds": "Criterion thresholds (NAME=VALUE)",
    "field_overrides_timers": "Stage timers (STAGE=REMIND/ESCALATE)",
    "field_overrides_skip_steps": "Steps to skip (PURPOSE:STEP)",
    "field_overrides_measure_on": "Measure on (weekday)",
    "field_overrides_measure_at": "Measure at (local hour)",
    "field_overrides_deadline": "Deadline (last day)",
    "placeholder_overrides_thresholds": "active_seat_ratio=0.4",
    "placeholder_overrides_timers": "kickoff=10d/20d",
    "placeholder_overrides_skip_steps": "A:nudge",
    "submit_overrides": "Save adjustments",
    "section_goals": "Goals",
    "goals_empty": "None agreed yet.",
    "section_purposes": "Purposes",
    "section_people": "People and handoff",
    # Task kinds (models.onboarding.TaskKind): a Japanese page names the task in Japanese
    # and shows the workflow's own English title beneath it.
    "task_kind_schedule_kickoff": "Schedule the kickoff meeting",
    "task_kind_schedule_training": "Schedule the product training",
    "task_kind_schedule_completion_review": "Schedule the completion review",
    "task_kind_overdue_reminder": "Overdue: a meeting not held yet",
    "task_kind_overdue_escalation": "Escalation: a meeting long overdue",
    "task_kind_stall_follow_up": "Usage stalled: reach out to the customer",
    "task_kind_stall_escalation": "Escalation: usage still stalled",
    "task_kind_setup_stuck": "Stuck in setup: no usage data",
    "task_kind_setup_stuck_escalation": "Escalation: still no usage data",
    "task_kind_meeting": "Hold an on-demand meeting",
    "task_kind_deadline_missed": "Onboarding failed: review",
    "task_kind_store_failed": "A record could not be stored: check it",
    "people_empty": "No contacts yet.",
    "contact_unsubscribed": "unsubscribed",
    "contact_suppressed": "no more mail ({reason})",
    "handoff_notes": "From sales",
    "meeting_notes": "Meeting notes",
    "purposes_empty": "None chosen yet.",
    "section_actions": "Record what happened",
    "actions_next": "Next step",
    "actions_other": "Other actions",
    "actions_ended": "The onboarding has ended ({stage}): it takes no more actions.",
    "field_held_on": "Held on",
    "field_resume_on": "Resume on (optional)",
    "field_attendees": "Attendees (one per line)",
    "field_goals": "Goals agreed (one per line)",
    "field_goal": "Goal",
    "field_reason": "Reason",
    "field_meeting": "Meeting",
    "field_notes": "Notes",
    "field_purpose": "Purpose",
    "field_contact_name": "Name",
    "field_contact_email": "Email",
    "field_contact_role": "Role",
    "field_success_confirmed": "Short-term success confirmed",
    "field_feedback": "Feedback",
    "field_feature_requests": "Feature requests (one per line)",
    "field_nps": "NPS answers (one per line: email score)",
    "field_confirm": "I understand this ends the onboarding for good.",
    "submit": "Record",
    "submit_cancel": "Cancel the onboarding",
    "meeting_poor_progress": "Poor progress",
    "meeting_momentum": "Momentum",
    "meeting_customer_request": "Customer request",
    "contact_role_decision_maker": "Decision maker",
    "contact_role_administrator": "Administrator",
    "contact_role_end_user": "End user",
    "refused": "Not recorded: {reason}",
    "invalid": "Not recorded: please check the fields marked below.",
    "recorded": "Recorded: it is on the timeline.",
    "recorded_duplicate": "Already recorded: this form was sent before.",
    "recorded_action": "{action}: recorded, it is on the timeline.",
    "err_required": "Required.",
    "err_date": "Enter a date as YYYY-MM-DD.",
    "err_too_long": "Too long: at most {n} characters.",
    "err_email": "Not an email address.",
    "err_nps": "Each line: an email address and a score from 0 to 10.",
    "err_confirm": "Tick the box to confirm.",
    "err_choice": "Choose one of the options.",
    # Timeline entry kinds
    "kind_transition": "Stage change",
    "kind_event_rejected": "Refused",
    "kind_weekly_measurement": "Weekly measurement",
    "kind_paused_measurement": "Measured while paused",
    "kind_setup_stuck": "Stuck in setup",
    "kind_setup_unstuck": "Setup done",
    "kind_stall_started": "Usage stalled",
    "kind_stall_cleared": "Stall cleared",
    "kind_stall_proposal": "Proposal email",
    "kind_task_opened": "Task opened",
    "kind_email_failed": "Email failed",
    "kind_campaign_step_sent": "Step email sent",
    "kind_campaign_step_skipped": "Step email skipped",
    "kind_playbook_migrated": "Playbook changed",
    "kind_overrides_set": "Playbook adjusted",
    "kind_task_overdue": "Task overdue",
    # Timeline sentences, rebuilt from each entry's details (api/dashboard/timeline.py);
    # the CSM events' own are in EVENT_WORDS.
    "tl_transition": "{source} → {target}: {cause}",
    "tl_setup_stuck": "no usage data for {waited}: stuck in setup",
    "tl_setup_unstuck": "usage data arrived: setup is done",
    "tl_weekly_measurement": "week {n}: active seats {ratio}, {actions} key actions: {outcome}",
    "tl_paused_measurement": (
        "week {n} measured while paused, not judged: active seats {ratio}, {actions} key actions"
    ),
    "tl_late_events": "; {n} events of earlier weeks arrived after their verdict",
    "outcome_met": "criteria met",
    "outcome_stalled": "stalled",
    "outcome_ok": "ok",
    "tl_campaign_step_sent": "{ref} sent to: {roles}",
    "tl_campaign_step_no_contact": "{ref} not sent: the customer has no contact in its roles",
    "tl_stall_proposal": "proposal email to the administrators",
    "tl_stall_proposals": "proposals for stuck purposes: {steps}",
    "tl_playbook_migrated": "playbook {source} → {target} by {by}: {reason}",
    "tl_overrides_set": "playbook adjusted for this customer by {by} ({reason}): {values}",
    "tl_overrides_cleared": "playbook values restored for this customer by {by} ({reason})",
    "tl_task_overdue": "task for {assignee} overdue (due {due}): {title}",
    # Cohort
    "cohort_title": "Cohort",
    "cohort_note": (
        "Counted from the stage changes each workflow recorded, for the customers you see,"
        " ended ones included."
    ),
    "cohort_empty": "No customers to count yet.",
    "glance_customers": "Customers",
    "glance_active": "In onboarding",
    "glance_onboarded": "Onboarded",
    "glance_failed": "Failed",
    "glance_cancelled": "Cancelled",
    "glance_stalled": "Stalled now",
    "glance_stuck": "Stuck in setup now",
    "glance_escalations": "Open escalations",
    "glance_time_to_onboard": "Median time to onboard",
    "funnel_title": "Funnel by stage",
    "col_stage": "Stage",
    "col_reached": "Reached",
    "col_now": "In it now",
    "time_title": "Time in stage",
    "col_median_done": "Median, finished stays",
    "col_done_n": "Finished stays",
    "col_median_now": "Median so far, in it now",
    "none": "–",
    # Errors
    "error_role_title": "Not for this token",
    "error_role_body": "A {role} token cannot use the dashboard.",
    "error_404_title": "Customer not found",
    "error_404_body": "No onboarding you can see was started for “{customer_id}”.",
    "error_bad_action": "Unknown action “{kind}”.",
    "error_unavailable_title": "Temporal is not answering",
    "error_unavailable_body": "The customer's onboarding could not be read just now: {reason}",
    "no_answer": "no answer in time (is a worker running?); sending again records it once",
    "back_to_list": "Back to my customers",
}

JA: dict[str, str] = {
    "nav_customers": "担当顧客",
    "nav_all_customers": "顧客一覧",
    "nav_cohort": "コホート",
    "sign_out": "ログアウト",
    "sign_out_question": "このブラウザでLiftoffからログアウトしますか？",
    "role_csm": "CSM",
    "role_lead": "CSリーダー",
    "role_ops": "CSオペレーション",
    "skip_to_content": "本文へ移動",
    "login_title": "サインイン",
    "login_intro": (
        "Liftoff の API トークンを貼り付けてください。"
        "トークンは CS オペレーション担当が「liftoff token create」で発行します。"
    ),
    "login_token": "API トークン",
    "login_submit": "サインイン",
    "login_empty": "トークンを入力してください。",
    "login_unknown": "このトークンは無効か、失効しています。",
    "login_ingest": (
        "インジェスト用トークンは利用データの送信専用です。"
        "csm・lead・ops のトークンでサインインしてください。"
    ),
    "signed_out": "ログアウトしました。",
    "customers_title": "担当顧客",
    "all_customers_title": "全顧客",
    "filter_csm": "CSM",
    "filter_all": "すべての CSM",
    "filter_apply": "表示",
    "summary_customers": "オンボーディング中 {n} 社",
    "summary_stuck": "セットアップ停滞 {n} 社",
    "summary_stalled": "利用停滞 {n} 社",
    "summary_tasks": "未完了タスク {n} 件",
    "col_customer": "顧客",
    "col_attention": "要対応",
    "col_days_in_stage": "滞在期間",
    "col_next_due": "次の期日",
    "col_tasks": "未完了タスク",
    "col_csm": "CSM",
    "col_started": "開始",
    "flag_stuck": "セットアップ停滞",
    "flag_stuck_hint": "利用データが届いていません（デバイス未設置・連携未接続の可能性）",
    "flag_stalled": "利用停滞",
    "flag_stalled_hint": "利用状況が停滞ルールを下回っています",
    "flag_paused": "{since} から一時停止中（{reason}）",
    "flag_paused_hint": "再開するまでメール・リマインド・判定は行いません",
    "flag_paused_until": "{day} に再開",
    "no_customers": "表示する顧客はいません。",
    "ended_customers": "終了（{n} 社）",
    "col_ended": "終了日",
    "page_shown": "{total} 社中 {first}–{last} 社",
    "page_previous": "前へ",
    "page_next": "次へ",
    "overdue": "期限超過",
    "stage_handoff": "引き継ぎ",
    "stage_kickoff": "キックオフ",
    "stage_training": "トレーニング",
    "stage_adoption": "活用定着",
    "stage_completion_review": "完了レビュー",
    "stage_onboarded": "オンボーディング完了",
    "stage_failed": "未達",
    "stage_cancelled": "中止",
    "due_remind_csm": "CSM へのリマインド",
    "due_escalate_to_leader": "リーダーへのエスカレーション",
    "due_measure": "週次計測",
    "due_momentum": "モメンタムミーティング",
    "due_deadline": "期限",
    "due_campaign_step": "ステップメール",
    "due_resume": "再開",
    "due_task_overdue": "タスク期限",
    "unit_d": "{n}日",
    "unit_h": "{n}時間",
    "unit_min": "{n}分",
    "unit_s": "{n}秒",
    "in_future": "{d}後",
    "in_past": "{d}前",
    "since": "{when} から",
    "label_csm": "CSM",
    "label_leader": "CSリーダー",
    "label_playbook": "プレイブック",
    "record_only": (
        "このオンボーディングは終了し、Temporalでの保存期間も過ぎたため、"
        "Liftoffの記録を表示しています。操作は記録できません。"
    ),
    "label_local_time": "顧客の現地時刻",
    "local_time_hint": "このページの時刻は顧客の現地時刻（{zone}）です。",
    "weekday_0": "月",
    "weekday_1": "火",
    "weekday_2": "水",
    "weekday_3": "木",
    "weekday_4": "金",
    "weekday_5": "土",
    "weekday_6": "日",
    "label_in_stage": "滞在期間",
    "label_next_due": "次の期日",
    "label_started": "開始",
    "section_measurement": "週次計測",
    "chart_seats": "アクティブ席率",
    "chart_actions": "週あたり主要アクション数",
    "legend_criterion": "完了基準",
    "legend_stall": "停滞しきい値",
    "chart_week": "第{n}週",
    "no_measurement": "計測はまだありません。活用定着に入って1週間後に最初の計測を行います。",
    "verdict_caption": "第{n}週（{start} – {end}）",
    "col_criterion": "基準",
    "col_observed": "今週",
    "col_threshold": "必要値",
    "col_weeks": "連続週数",
    "col_met": "達成",
    "criteria_met": "完了基準を満たしました",
    "criteria_not_met": "未達の基準があります",
    "yes": "はい",
    "no": "いいえ",
    "metric_active_seat_ratio": "アクティブ席率",
    "metric_active_users": "アクティブユーザー数",
    "metric_key_actions": "主要アクション数",
    "metric_events": "イベント数",
    "metric_quota_consumption": "利用枠消化率",
    "metric_goals_agreed": "合意済みゴール数",
    "metric_email_opens": "メール開封数",
    "metric_email_clicks": "メールクリック数",
    "section_timeline": "タイムライン",
    "timeline_empty": "まだ記録はありません。",
    "section_emails": "メール",
    "emails_empty": "送信したメールはまだありません。",
    "col_when": "日時",
    "col_email": "メール",
    "col_to": "宛先",
    "col_status": "状態",
    "col_fate": "結果",
    "email_sent": "送信済み",
    "email_sending": "送信中",
    "email_failed": "失敗",
    "section_tasks": "未完了タスク",
    "tasks_empty": "未完了のタスクはありません。",
    "task_due": "期日 {when}",
    "task_done": "完了にする",
    "field_note": "メモ（任意）",
    "section_overrides": "この顧客向けの調整",
    "overrides_empty": "プレイブックの値がそのまま適用されています。",
    "overrides_saved": "調整を保存し、タイムラインに記録しました。",
    "overrides_hint": "全体を置き換えます。空にした項目はプレイブックの値に戻ります。1行に1項目。",
    "col_setting": "項目",
    "col_playbook_value": "プレイブック",
    "col_customer_value": "この顧客",
    "action_adjust": "この顧客向けにプレイブックを調整する",
    "field_overrides_thresholds": "基準のしきい値（名前=値）",
    "field_overrides_timers": "ステージのタイマー（ステージ=リマインド/エスカレーション）",
    "field_overrides_skip_steps": "送らないステップ（目的:ステップ）",
    "field_overrides_measure_on": "計測する曜日",
    "field_overrides_measure_at": "計測する時刻（現地の時）",
    "field_overrides_deadline": "期限（最終日）",
    "placeholder_overrides_thresholds": "active_seat_ratio=0.4",
    "placeholder_overrides_timers": "kickoff=10d/20d",
    "placeholder_overrides_skip_steps": "A:nudge",
    "submit_overrides": "調整を保存する",
    "section_goals": "ゴール",
    "goals_empty": "まだ合意していません。",
    "section_purposes": "利用目的",
    "section_people": "担当者と引き継ぎ",
    "task_kind_schedule_kickoff": "キックオフミーティングを設定する",
    "task_kind_schedule_training": "製品トレーニングを設定する",
    "task_kind_schedule_completion_review": "完了レビューを設定する",
    "task_kind_overdue_reminder": "期限超過: ミーティングが未実施",
    "task_kind_overdue_escalation": "エスカレーション: ミーティングが大幅に遅延",
    "task_kind_stall_follow_up": "利用が停滞: 顧客に連絡する",
    "task_kind_stall_escalation": "エスカレーション: 利用の停滞が続いている",
    "task_kind_setup_stuck": "セットアップで停滞: 利用データが届かない",
    "task_kind_setup_stuck_escalation": "エスカレーション: 利用データが届かないまま",
    "task_kind_meeting": "オンデマンドミーティングを実施する",
    "task_kind_deadline_missed": "オンボーディング失敗: 振り返る",
    "task_kind_store_failed": "記録を保存できませんでした: 確認する",
    "people_empty": "担当者はまだいません。",
    "contact_unsubscribed": "配信停止",
    "contact_suppressed": "送信停止（{reason}）",
    "handoff_notes": "営業からの引き継ぎ",
    "meeting_notes": "ミーティングのメモ",
    "purposes_empty": "まだ選ばれていません。",
    "section_actions": "対応を記録",
    "actions_next": "次のステップ",
    "actions_other": "その他の対応",
    "actions_ended": "オンボーディングは終了しました（{stage}）。これ以上の記録はできません。",
    "field_held_on": "実施日",
    "field_resume_on": "再開日（任意）",
    "field_attendees": "参加者（1行に1名）",
    "field_goals": "合意したゴール（1行に1つ）",
    "field_goal": "ゴール",
    "field_reason": "理由",
    "field_meeting": "ミーティング種別",
    "field_notes": "メモ",
    "field_purpose": "利用目的",
    "field_contact_name": "氏名",
    "field_contact_email": "メールアドレス",
    "field_contact_role": "役割",
    "field_success_confirmed": "短期的な成功を確認できた",
    "field_feedback": "フィードバック",
    "field_feature_requests": "機能要望（1行に1件）",
    "field_nps": "NPS 回答（1行に1件：メールアドレス スコア）",
    "field_confirm": "この操作でオンボーディングが終了することを理解しました。",
    "submit": "記録する",
    "submit_cancel": "中止する",
    "meeting_poor_progress": "進捗不良",
    "meeting_momentum": "モメンタム維持",
    "meeting_customer_request": "顧客からの依頼",
    "contact_role_decision_maker": "意思決定者",
    "contact_role_administrator": "管理者",
    "contact_role_end_user": "エンドユーザー",
    "refused": "記録されませんでした: {reason}",
    "invalid": "記録されませんでした。下の項目を確認してください。",
    "recorded": "記録しました。タイムラインに追加されています。",
    "recorded_duplicate": "記録済みです（同じフォームが既に送信されています）。",
    "recorded_action": "{action}: 記録しました。タイムラインに追加されています。",
    "err_required": "必須項目です。",
    "err_date": "日付を YYYY-MM-DD の形式で入力してください。",
    "err_too_long": "長すぎます（{n}文字まで）。",
    "err_email": "メールアドレスの形式ではありません。",
    "err_nps": "各行にメールアドレスと 0〜10 のスコアを入力してください。",
    "err_confirm": "確認のチェックを入れてください。",
    "err_choice": "選択肢から選んでください。",
    "kind_transition": "ステージ移行",
    "kind_event_rejected": "却下",
    "kind_weekly_measurement": "週次計測",
    "kind_paused_measurement": "一時停止中の計測",
    "kind_setup_stuck": "セットアップ停滞",
    "kind_setup_unstuck": "セットアップ完了",
    "kind_stall_started": "利用停滞",
    "kind_stall_cleared": "停滞解消",
    "kind_stall_proposal": "提案メール",
    "kind_task_opened": "タスク作成",
    "kind_email_failed": "メール送信失敗",
    "kind_campaign_step_sent": "ステップメール送信",
    "kind_campaign_step_skipped": "ステップメール省略",
    "kind_playbook_migrated": "プレイブック変更",
    "kind_overrides_set": "プレイブック調整",
    "tl_playbook_migrated": "プレイブック {source} → {target}（{by}、理由: {reason}）",
    "tl_overrides_set": "この顧客向けにプレイブックを調整（{by}、理由: {reason}）: {values}",
    "tl_overrides_cleared": "この顧客のプレイブックの値を元に戻した（{by}、理由: {reason}）",
    "kind_task_overdue": "タスク期限超過",
    "tl_task_overdue": "{assignee} のタスクが期限（{due}）を過ぎています: {title}",
    "tl_transition": "{source} → {target}（{cause}）",
    "tl_setup_stuck": "利用データが {waited} 届いていません: セットアップ停滞",
    "tl_setup_unstuck": "利用データが届きました: セットアップ完了",
    "tl_paused_measurement": (
        "第{n}週（一時停止中のため判定なし）: アクティブ席率 {ratio}、主要アクション {actions} 回"
    ),
    "tl_weekly_measurement": (
        "第{n}週: アクティブ席率 {ratio}、主要アクション {actions} 回: {outcome}"
    ),
    "tl_late_events": "（前週までの利用 {n} 件が判定後に到着）",
    "outcome_met": "完了基準を達成",
    "outcome_stalled": "利用停滞",
    "outcome_ok": "順調",
    "tl_campaign_step_sent": "{ref} を送信: {roles}",
    "tl_campaign_step_no_contact": "{ref} は未送信: 対象の役割に担当者がいません",
    "tl_stall_proposal": "管理者へ提案メールを送信",
    "tl_stall_proposals": "停滞中の利用目的の提案メール: {steps}",
    "cohort_title": "コホート",
    "cohort_note": (
        "閲覧できる顧客について、各ワークフローが記録したステージ移行から集計しています。"
    ),
    "cohort_empty": "集計できる顧客はまだいません。",
    "glance_customers": "顧客数",
    "glance_active": "オンボーディング中",
    "glance_onboarded": "完了",
    "glance_failed": "未達",
    "glance_cancelled": "中止",
    "glance_stalled": "利用停滞中",
    "glance_stuck": "セットアップ停滞中",
    "glance_escalations": "未対応のエスカレーション",
    "glance_time_to_onboard": "完了までの期間（中央値）",
    "funnel_title": "ステージ別ファネル",
    "col_stage": "ステージ",
    "col_reached": "到達",
    "col_now": "現在",
    "time_title": "ステージ滞在期間",
    "col_median_done": "中央値（通過済み）",
    "col_done_n": "通過数",
    "col_median_now": "中央値（滞在中）",
    "none": "–",
    "error_role_title": "このトークンでは利用できません",
    "error_role_body": "{role} トークンではダッシュボードを利用できません。",
    "error_404_title": "顧客が見つかりません",
    "error_404_body": "「{customer_id}」について、表示できるオンボーディングはありません。",
    "error_bad_action": "不明な操作です: {kind}",
    "error_unavailable_title": "Temporal から応答がありません",
    "error_unavailable_body": "オンボーディングの状態を読み取れませんでした: {reason}",
    "no_answer": (
        "時間内に応答がありません（ワーカーは起動していますか？）。再送しても記録は1回だけです"
    ),
    "back_to_list": "担当顧客に戻る",
}


@dataclass(frozen=True)
class Words:
    """What the dashboard calls one CSM event kind in one language."""

    # The title of its form.
    action: str
    # The kind of its timeline entry.
    label: str
    # Its timeline entry, filled from the event's fields (api/dashboard/timeline.py):
    # a list gives its length, a nested model its fields as `contact_name`, a choice
    # its own words (`meeting_momentum`), a yes/no the words `yes` and `no`.
    sentence: str


@dataclass(frozen=True)
class EventWords:
    en: Words
    ja: Words


# Every kind in models.events.EVENT_MODELS; a test checks none is missing.
EVENT_WORDS: dict[str, EventWords] = {
    "kickoff_held": EventWords(
        en=Words(
            "Kickoff held",
            "Kickoff held",
            "kickoff held on {held_on} with {goals} goal(s) agreed",
        ),
        ja=Words(
            "キックオフ実施",
            "キックオフ実施",
            "{held_on} にキックオフを実施、目標 {goals} 件に合意",
        ),
    ),
    "goal_agreed": EventWords(
        en=Words("Goal agreed", "Goal agreed", "goal agreed: {goal}"),
        ja=Words("ゴール合意", "ゴール合意", "目標に合意: {goal}"),
    ),
    "training_held": EventWords(
        en=Words("Training held", "Training held", "training held on {held_on}"),
        ja=Words("トレーニング実施", "トレーニング実施", "{held_on} にトレーニングを実施"),
    ),
    "training_skipped": EventWords(
        en=Words("Training skipped", "Training skipped", "training skipped: {reason}"),
        ja=Words("トレーニング省略", "トレーニング省略", "トレーニングを省略: {reason}"),
    ),
    "meeting_requested": EventWords(
        en=Words("Meeting requested", "Meeting requested", "meeting requested ({meeting})"),
        ja=Words("ミーティング依頼", "ミーティング依頼", "ミーティングを依頼（{meeting}）"),
    ),
    "meeting_held": EventWords(
        en=Words("Meeting held", "Meeting held", "meeting held on {held_on} ({meeting})"),
        ja=Words(
            "ミーティング実施", "ミーティング実施", "{held_on} にミーティングを実施（{meeting}）"
        ),
    ),
    "purpose_added": EventWords(
        en=Words("Purpose added", "Purpose added", "purpose {purpose} added"),
        ja=Words("利用目的の追加", "利用目的の追加", "利用目的 {purpose} を追加"),
    ),
    "contact_added": EventWords(
        en=Words(
            "Contact added", "Contact added", "contact added: {contact_name} ({contact_role})"
        ),
        ja=Words("担当者の追加", "担当者の追加", "担当者を追加: {contact_name}（{contact_role}）"),
    ),
    "completion_review_held": EventWords(
        en=Words(
            "Completion review held",
            "Completion review held",
            "completion review held on {held_on}; success: {success_confirmed}",
        ),
        ja=Words(
            "完了レビュー実施",
            "完了レビュー実施",
            "{held_on} に完了レビューを実施、短期的成功の確認: {success_confirmed}",
        ),
    ),
    "task_completed": EventWords(
        en=Words("Task done", "Task done", "task {task_id} done"),
        ja=Words("タスク完了", "タスク完了", "タスク {task_id} を完了"),
    ),
    "paused": EventWords(
        en=Words("Pause", "Paused", "paused: {reason}"),
        ja=Words("一時停止", "一時停止", "一時停止: {reason}"),
    ),
    "resumed": EventWords(
        en=Words("Resume", "Resumed", "resumed"),
        ja=Words("再開", "再開", "再開"),
    ),
    "cancelled": EventWords(
        en=Words("Cancel the onboarding", "Cancelled", "cancelled: {reason}"),
        ja=Words("オンボーディングを中止", "中止", "中止: {reason}"),
    ),
}


def _catalogue_entries(kind: str, said: Words) -> dict[str, str]:
    return {f"action_{kind}": said.action, f"kind_{kind}": said.label, f"tl_{kind}": said.sentence}


for _kind, _words in EVENT_WORDS.items():
    EN |= _catalogue_entries(_kind, _words.en)
    JA |= _catalogue_entries(_kind, _words.ja)

# The cohort analytics page (/cohort/analytics): (English, Japanese) side by side.
ANALYTICS_WORDS: dict[str, tuple[str, str]] = {
    "analytics_title": ("Cohort analytics", "コホート分析"),
    "analytics_link": ("Analytics", "分析"),
    "analytics_note": (
        "Customers still onboarding count as still waiting (censored at today), neither"
        " dropped nor counted as zero; failed and cancelled ones as never onboarded, at"
        " their end. Medians and their 95% intervals are Kaplan-Meier estimates.",
        "オンボーディング中の顧客は除外もゼロ扱いもせず、本日時点で「まだ待機中」（打ち切り）と"
        "して数えます。未達・中止の顧客は終了時点で「完了しなかった」として扱います。中央値と"
        "その95%信頼区間はカプラン・マイヤー推定です。",
    ),
    "analytics_bad_query": (
        "Unknown grouping or stage: group by one of {by}; a stage of {stages}.",
        "グループまたはステージが不明です。グループは {by}、"
        "ステージは {stages} から選んでください。",
    ),
    "analytics_by": ("Group by", "グループ"),
    "analytics_csv": ("CSV", "CSV"),
    "analytics_nothing": ("Nothing to count yet.", "集計できるデータはまだありません。"),
    "analytics_yes": ("trial used", "トライアルあり"),
    "analytics_no": ("no trial", "トライアルなし"),
    "by_all": ("Everyone", "全体"),
    "by_start_month": ("Start month", "開始月"),
    "by_purpose": ("Purpose", "利用目的"),
    "by_playbook_version": ("Playbook version", "プレイブックのバージョン"),
    "by_seats_band": ("Seats", "契約席数"),
    "by_trial_used": ("Trial", "トライアル"),
    "by_locale": ("Language", "言語"),
    "by_country": ("Country", "国"),
    "km_onboard_title": ("Time to onboard", "オンボーディング完了までの期間"),
    "km_stage_title": ("Time in {stage}", "{stage}の滞在期間"),
    "km_axis_days": ("days", "日"),
    "km_axis_hours": ("hours", "時間"),
    "km_axis_minutes": ("minutes", "分"),
    "km_axis_seconds": ("seconds", "秒"),
    "km_axis_waiting": ("share not yet through", "未完了の割合"),
    "km_band": ("Shaded: 95% confidence band", "網掛け: 95%信頼区間"),
    "km_more_groups": ("{n} smaller groups in the table only", "小さい {n} グループは表のみ"),
    "not_reached": ("not reached", "未到達"),
    "col_group": ("Group", "グループ"),
    "col_customers": ("Customers", "顧客数"),
    "col_onboarded": ("Onboarded", "完了"),
    "col_moved_on": ("Moved on", "次へ進んだ"),
    "col_censored": ("Censored", "打ち切り"),
    "col_median": ("Median", "中央値"),
    "col_ci": ("95% interval", "95%信頼区間"),
    "stalls_title": ("Where failed and stalled customers stall", "未達・停滞顧客のつまずき"),
    "stalls_totals": (
        "{failed} failed, {stalled} stalled now, {without} of them before any weekly verdict."
        " Each criterion missing at a customer's latest verdict, and for how many weeks running.",
        "未達 {failed} 社、停滞中 {stalled} 社（うち週次判定前 {without} 社）。"
        "各顧客の最新の週次判定で満たしていなかった完了条件と、連続して未達だった週数です。",
    ),
    "col_criterion": ("Completion criterion", "完了条件"),
    "col_missing": ("Customers missing it", "未達の顧客"),
    "col_weeks_missing": ("Median weeks missing", "未達週数（中央値）"),
    "col_longest_weeks": ("Longest", "最長"),
    "escalations_title": ("Escalations per CSM", "CSM別のエスカレーション"),
    "email_steps_title": ("Step emails", "ステップメール"),
    "col_step": ("Step", "ステップ"),
    "col_role": ("Role", "役割"),
    "col_locale": ("Language", "言語"),
    "col_email_sent": ("Sent", "送信"),
    "col_email_delivered": ("Delivered", "配信"),
    "col_email_opened": ("Opened", "開封"),
    "col_email_clicked": ("Clicked", "クリック"),
    "col_email_opted_out": ("Opted out", "配信停止"),
    "recovery_title": ("Steps before a recovery from a stall", "停滞からの回復に先立ったステップ"),
    "recovery_note": (
        "Each step sent during a stall, and how many of those stalls were then cleared."
        " Coming before a recovery is not causing it.",
        "停滞中に送信されたステップと、そのうち停滞が解消した件数です。先立ったことは原因を意味しません。",
    ),
    "col_sent_in_stall": ("Stalls it was sent in", "送信された停滞"),
    "col_recovered": ("Then cleared", "その後解消"),
}

for _key, (_en, _ja) in ANALYTICS_WORDS.items():
    EN[_key] = _en
    JA[_key] = _ja

# The outcome analysis (/cohort/outcomes, api/dashboard/outcomes.py): (en, ja) side by side.
OUTCOME_WORDS: dict[str, tuple[str, str]] = {
    "nav_outcomes": ("Outcomes", "その後の成果"),
    "outcomes_title": ("Outcomes after onboarding", "オンボーディング後の成果"),
    "outcomes_note": (
        "Churn and health 6 and 12 months after the onboarding ended, by its outcome, "
        "from the renewals, churn and health scores imported (liftoff outcomes import, "
        "liftoff health import). 95% confidence intervals; no conclusion below {minimum} "
        "customers a group.",
        "オンボーディング終了から 6・12 か月後の解約とヘルススコアを、オンボーディングの結果別に"
        "示します（liftoff outcomes import・liftoff health import で取り込んだ更新・解約・"
        "ヘルススコアから）。95% 信頼区間。1 グループ {minimum} 社未満では結論を出しません。",
    ),
    "outcomes_version": ("Playbook version", "プレイブックのバージョン"),
    "outcomes_all_versions": ("All versions", "全バージョン"),
    "outcomes_empty": (
        "No customer has finished onboarding under this version yet.",
        "このバージョンでオンボーディングを終えた顧客はまだいません。",
    ),
    "outcomes_months": (
        "{months} months after onboarding ended",
        "オンボーディング終了から {months} か月",
    ),
    "outcomes_criteria": (
        "Completion criteria met at the last measurement, {months} months on",
        "最後の計測で満たしていた完了基準と {months} か月後",
    ),
    "outcomes_download": ("Download as CSV", "CSV でダウンロード"),
    "col_outcome": ("Outcome", "結果"),
    "col_ended_n": ("Ended", "終了"),
    "col_churn": ("Churned", "解約率"),
    "col_health": ("Mean health", "平均ヘルススコア"),
    "col_not_yet": ("Not yet", "未到来"),
    "col_compared": ("Compared with onboarded", "オンボーディング完了との比較"),
    "col_churn_difference": ("Churn above onboarded", "完了顧客との解約率の差"),
    "col_health_ratio": ("Health ratio", "ヘルススコアの比"),
    "col_criterion": ("Criterion", "完了基準"),
    "col_churn_met": ("Churned if met", "達成時の解約率"),
    "col_churn_not_met": ("Churned if not", "未達時の解約率"),
    "col_churn_lift": ("Churn lift if not met", "未達時の解約リフト"),
    "col_high_health_lift": ("High health lift if met", "達成時の高ヘルスのリフト"),
    "verdict_conclusive": ("conclusive", "結論できる"),
    "verdict_not_conclusive": ("not conclusive", "結論できない"),
    "verdict_too_few": ("too few to conclude", "件数不足で結論できない"),
    "oc_version": ("playbook version {version}", "プレイブック {version}"),
    "oc_any_version": ("any playbook version", "全バージョンのプレイブック"),
    "oc_less": ("less", "低い"),
    "oc_more": ("more", "高い"),
    "oc_churn": (
        "customers onboarded under {version} churned {amount} percentage points {direction} "
        "than failed ones within {months} months (95% CI {low}…{high}, n={n}): {verdict}",
        "{version} でオンボーディングを完了した顧客の {months} か月以内の解約率は、失敗した顧客より"
        " {amount} ポイント{direction}（95% 信頼区間 {low}…{high}、n={n}）: {verdict}",
    ),
    "oc_health": (
        "their health {months} months on was {ratio}× that of failed ones "
        "(95% CI {low}…{high}, n={n}): {verdict}",
        "{months} か月後のヘルススコアは失敗した顧客の {ratio} 倍"
        "（95% 信頼区間 {low}…{high}、n={n}）: {verdict}",
    ),
    "oc_churn_too_few": (
        "churn within {months} months under {version}: too few customers to conclude "
        "({onboarded} onboarded and {failed} failed observed; at least {minimum} of each needed)",
        "{version} の {months} か月以内の解約: 件数不足で結論できません"
        "（観測できたのは完了 {onboarded} 社・失敗 {failed} 社。各 {minimum} 社以上が必要）",
    ),
    "oc_health_too_few": (
        "health {months} months on: too few scores to conclude "
        "({onboarded} onboarded and {failed} failed scored; at least {minimum} of each needed)",
        "{months} か月後のヘルススコア: 件数不足で結論できません"
        "（スコアがあるのは完了 {onboarded} 社・失敗 {failed} 社。各 {minimum} 社以上が必要）",
    ),
    "oc_join": ("; ", "。"),
    "outcomes_forbidden": (
        "The outcome analysis covers every CSM's customers: sign in with a lead or ops token.",
        "成果の分析は全 CSM の顧客を対象とします。"
        "lead または ops のトークンでサインインしてください。",
    ),
}
for _key, (_en, _ja) in OUTCOME_WORDS.items():
    EN[_key] = _en
    JA[_key] = _ja

# NPS: the cohort's figures, a customer's answers, and the public answer page that a
# survey email's score link opens (api/routes/surveys.py).
SURVEY_WORDS: dict[str, tuple[str, str]] = {
    "nps_title": ("NPS", "NPS"),
    "nps_note": (
        "Promoters (9-10) minus detractors (0-6), in percent, over the survey answers and "
        "the completion reviews' NPS; a group with fewer than {minimum} answers is too small "
        "to read.",
        "推奨者（9〜10）の割合から批判者（0〜6）の割合を引いた値（%）。アンケートと完了レビューの "
        "NPS 回答から集計します。回答が {minimum} 件未満のグループは少なすぎて判断できません。",
    ),
    "nps_empty": ("No NPS answers yet.", "NPS の回答はまだありません。"),
    "nps_by_role": ("By role", "役割別"),
    "nps_by_touchpoint": ("By touchpoint", "タッチポイント別"),
    "nps_by_seats_band": ("By seats (segment)", "契約席数別（セグメント）"),
    "col_group": ("Group", "グループ"),
    "col_nps": ("NPS", "NPS"),
    "col_answers": ("Answers", "回答数"),
    "col_promoters": ("Promoters", "推奨者"),
    "col_detractors": ("Detractors", "批判者"),
    "nps_too_small": ("n too small", "回答数不足"),
    "nps_group_unknown": ("Not a contact", "担当者以外"),
    "touchpoint_after_kickoff": ("After kickoff", "キックオフ後"),
    "touchpoint_after_training": ("After training", "トレーニング後"),
    "touchpoint_at_completion_review": ("Completion review", "完了レビュー"),
    "seats_band_unit": ("{band} seats", "{band} 席"),
    "section_survey_answers": ("NPS answers", "NPS 回答"),
    "survey_answers_empty": ("No NPS answers yet.", "NPS の回答はまだありません。"),
    "col_score": ("Score", "スコア"),
    "col_touchpoint": ("Touchpoint", "タッチポイント"),
    "col_comment": ("Comment", "コメント"),
    "col_role": ("Role", "役割"),
    "source_link": ("survey email", "アンケートメール"),
    "source_completion_review": ("completion review", "完了レビュー"),
    # The public answer page.
    "survey_title": ("Your answer", "ご回答"),
    "survey_question": (
        "How likely are you to recommend the product to a friend or colleague?",
        "本サービスを友人や同僚にすすめる可能性はどのくらいありますか。",
    ),
    "survey_chosen": ("You chose {score} out of 10.", "選択された点数：{score}（10点満点）"),
    "survey_comment_label": (
        "Anything you would like to add? (optional, up to {max} characters)",
        "ご意見があればお書きください（任意・{max} 文字まで）",
    ),
    "survey_confirm": ("Send my answer", "回答を送信する"),
    "survey_confirm_hint": (
        "Your answer is recorded when you press the button; your first answer counts.",
        "ボタンを押すと回答が記録されます。最初のご回答が有効です。",
    ),
    "survey_thanks_title": ("Thank you", "ありがとうございました"),
    "survey_thanks_body": (
        "Your score of {score} for {customer} is recorded.",
        "{customer}様のご回答（{score}点）を記録しました。",
    ),
    "survey_already_title": ("Already answered, thank you", "回答済みです。ありがとうございました"),
    "survey_already_body": (
        "An answer of {score} was recorded on {day}; it stays as it is.",
        "{day} に {score} 点のご回答を記録済みです。回答は変更されません。",
    ),
    "survey_add_comment": ("Add a comment", "コメントを追加する"),
    "survey_comment_saved": ("Your comment is recorded.", "コメントを記録しました。"),
    "survey_comment_kept": (
        "A comment was already recorded; it stays as it is.",
        "コメントは記録済みのため、変更されません。",
    ),
    "survey_comment_too_long": (
        "A comment may be at most {max} characters; this one has {n}. Nothing was recorded.",
        "コメントは {max} 文字までです（入力は {n} 文字）。まだ何も記録していません。",
    ),
    "survey_comment_empty": ("Write a comment first.", "コメントを入力してください。"),
    "survey_comment_control": (
        "The comment holds a control character that cannot be stored; remove it and send "
        "again. Nothing was recorded.",
        "コメントに保存できない制御文字が含まれています。取り除いてから送信してください。"
        "まだ何も記録していません。",
    ),
    "survey_expired_title": ("This link has expired", "このリンクは有効期限が切れています"),
    "survey_expired_body": (
        "Survey links stay valid for a limited time. Thank you all the same; your customer "
        "success manager is glad to hear from you directly.",
        "アンケートのリンクには有効期限があります。ご協力ありがとうございました。"
        "ご意見は担当のカスタマーサクセスまで直接お寄せください。",
    ),
    "survey_invalid_title": ("This link does not work", "このリンクは使用できません"),
    "survey_invalid_body": (
        "The link may have been cut or changed on the way. Please open it from the email "
        "again, whole.",
        "リンクが途中で切れたり変わったりした可能性があります。メールのリンクをそのまま開き直してください。",
    ),
    "survey_off_title": ("Surveys are not available", "アンケートは利用できません"),
    "survey_off_body": (
        "This server cannot check survey links just now (LIFTOFF_SURVEY_SECRET is not set).",
        "現在このサーバーではアンケートのリンクを確認できません"
        "（LIFTOFF_SURVEY_SECRET が未設定）。",
    ),
}
for _key, (_en, _ja) in SURVEY_WORDS.items():
    EN[_key] = _en
    JA[_key] = _ja

# Opt-outs per email category: the public preference page a message's unsubscribe link
# opens (api/routes/opt_outs.py), the customer's page and the timeline.
OPT_OUT_WORDS: dict[str, tuple[str, str]] = {
    "category_step": ("Onboarding step emails", "オンボーディングのステップメール"),
    "category_proposal": ("Suggestions when usage stalls", "利用が停滞したときのご提案"),
    "category_survey": ("Satisfaction surveys", "満足度アンケート"),
    "category_operational": ("Service notices", "サービスに関するご連絡"),
    "optout_title": ("Email preferences", "メール配信設定"),
    "optout_intro": (
        "Emails {customer} receives from us at {email}. Untick a kind to stop it; tick it "
        "again to receive it again.",
        "{customer}様の {email} 宛てにお送りするメールです。"
        "停止したい種類のチェックを外してください。もう一度チェックを入れると再開します。",
    ),
    "optout_save": ("Save my choices", "設定を保存する"),
    "optout_saved": ("Your choices are saved.", "設定を保存しました。"),
    "optout_one_click_done": (
        "You will no longer receive {category}. Other emails continue as chosen below.",
        "{category}の配信を停止しました。その他のメールは下記の設定どおりお送りします。",
    ),
    "optout_operational_note": (
        "Service notices (meeting invitations, tasks and messages your team needs to run "
        "the onboarding) have no unsubscribe: they are sent while the onboarding lasts.",
        "サービスに関するご連絡（ミーティングのご案内、オンボーディングの進行に必要なタスクやご連絡）は"
        "配信停止の対象外です。オンボーディング期間中はお送りします。",
    ),
    "optout_expired_title": ("This link has expired", "このリンクは有効期限が切れています"),
    "optout_expired_body": (
        "Unsubscribe links stay valid for a year. Please use the link in a more recent "
        "email, or ask your customer success manager to stop the emails.",
        "配信停止のリンクの有効期限は1年です。新しいメールのリンクをお使いいただくか、"
        "担当のカスタマーサクセスに配信停止をお申し付けください。",
    ),
    "optout_invalid_title": ("This link does not work", "このリンクは使用できません"),
    "optout_invalid_body": (
        "The link may have been cut or changed on the way. Please open it from the email "
        "again, whole. Nothing was changed.",
        "リンクが途中で切れたり変わったりした可能性があります。メールのリンクをそのまま開き直してください。"
        "設定は変更されていません。",
    ),
    "optout_off_title": ("Email preferences are not available", "メール配信設定は利用できません"),
    "optout_off_body": (
        "This server cannot check unsubscribe links just now (LIFTOFF_SURVEY_SECRET is not "
        "set). Please ask your customer success manager to stop the emails.",
        "現在このサーバーでは配信停止のリンクを確認できません（LIFTOFF_SURVEY_SECRET が未設定）。"
        "担当のカスタマーサクセスに配信停止をお申し付けください。",
    ),
    # The customer's page.
    "contact_opted_out": ("opted out of: {categories}", "配信停止：{categories}"),
    "opt_out_short_step": ("step emails", "ステップメール"),
    "opt_out_short_proposal": ("proposals", "提案"),
    "opt_out_short_survey": ("surveys", "アンケート"),
    # The timeline.
    "kind_email_opted_out": ("Email not sent (opted out)", "メール未送信（配信停止）"),
    "tl_email_opted_out": (
        "Not sent: {recipients} opted out of {category}",
        "未送信：{recipients} は{category}の配信を停止しています",
    ),
}
for _key, (_en, _ja) in OPT_OUT_WORDS.items():
    EN[_key] = _en
    JA[_key] = _ja

# The playbook review (/cohort/review, api/dashboard/review.py): (en, ja) side by side.
REVIEW_WORDS: dict[str, tuple[str, str]] = {
    "review_title": ("Playbook review: {version}", "プレイブックのレビュー：{version}"),
    "review_note": (
        "{finished} customers of this version have finished. Each completion criterion gets a "
        "suggestion from the figures behind it.",
        "このバージョンの顧客のうち {finished} 社が終了しました。"
        "完了基準ごとに、その根拠となる数値から提案を示します。",
    ),
    "review_pick": (
        "Name a playbook version: /cohort/review?version=…",
        "プレイブックのバージョンを指定してください：/cohort/review?version=…",
    ),
    "review_task": (
        "Review task for {leader}, opened {day} ({state}).",
        "{leader} へのレビュータスク（{day} 作成、{state}）。",
    ),
    "review_none": ("No customers on this version yet.", "このバージョンの顧客はまだいません。"),
    "review_funnel": ("Funnel", "ファネル"),
    "review_time": ("Time to onboard", "オンボーディング完了までの期間"),
    "review_stalls": ("Where failed and stalled customers stall", "失敗・停滞した顧客の停滞箇所"),
    "review_emails": ("Email steps", "メールステップ"),
    "review_nps": ("NPS by role", "役割別 NPS"),
    "review_outcomes": ("Outcome analysis", "成果の分析"),
    "review_suggestions": ("Completion criteria: suggestions", "完了基準への提案"),
    "review_sent": ("Sent", "送信"),
    "review_opened": ("Opened", "開封"),
    "review_clicked": ("Clicked", "クリック"),
    "review_download_md": ("Download Markdown", "Markdown をダウンロード"),
    "review_download_csv": ("Download CSV", "CSV をダウンロード"),
    "col_suggestion": ("Suggestion", "提案"),
    "col_reason": ("Why", "理由"),
    "col_figures": ("Figures", "数値"),
    "suggest_keep": ("keep", "維持"),
    "suggest_raise": ("raise", "引き上げ"),
    "suggest_lower": ("lower", "引き下げ"),
    "suggest_drop": ("drop", "削除"),
    "suggest_not_enough_data": ("not enough data", "データ不足"),
    "reason_separates": (
        "Customers who met it churned less or had high health more often, conclusively.",
        "この基準を満たした顧客は解約が少ない、または健全度が高い傾向が明確でした。",
    ),
    "reason_wrong_way": (
        "Customers who met it did worse afterwards, conclusively: it measures the wrong thing.",
        "この基準を満たした顧客のほうがその後の結果が明確に悪く、測る対象が適切ではありません。",
    ),
    "reason_nearly_all_met": (
        "Nearly every customer met it, so it does not tell customers apart.",
        "ほぼすべての顧客が満たしており、顧客を見分ける役に立っていません。",
    ),
    "reason_nearly_none_met": (
        "Nearly no customer met it, so it holds customers back without evidence.",
        "ほとんどの顧客が満たしておらず、根拠のないまま顧客を足止めしています。",
    ),
    "reason_too_few": (
        "Too few customers on one side to conclude anything yet.",
        "どちらかの群の顧客が少なすぎて、まだ結論を出せません。",
    ),
    "reason_most_met": (
        "Most customers met it and meeting it made no clear difference: a higher bar may.",
        "大半の顧客が満たしており、満たしても明確な差がありません。基準を上げると差が出る可能性があります。",
    ),
    "reason_few_met": (
        "Few customers met it and meeting it made no clear difference: it only delays them.",
        "満たした顧客は少なく、満たしても明確な差がありません。完了を遅らせているだけです。",
    ),
    "reason_troubled_miss_it": (
        "No clear difference in outcomes yet, but most failed and stalled customers missed it.",
        "成果に明確な差はまだありませんが、失敗・停滞した顧客の多くがこの基準を満たしていません。",
    ),
    "reason_no_difference": (
        "Enough customers on both sides, and meeting it made no clear difference.",
        "両群とも十分な顧客がいますが、満たしても明確な差はありませんでした。",
    ),
    "task_review_title": ("Review playbook {version}", "プレイブック {version} のレビュー"),
}
for _key, (_en, _ja) in REVIEW_WORDS.items():
    EN[_key] = _en
    JA[_key] = _ja

# Playbook versions and migration (/playbooks): (en, ja) side by side.
PLAYBOOK_WORDS: dict[str, tuple[str, str]] = {
    "nav_playbooks": ("Playbooks", "プレイブック"),
    "playbooks_title": ("Playbook versions", "プレイブックのバージョン"),
    "playbooks_note": (
        "Each version as first used to start or move a customer. Customers stay on the "
        "version they started with until they are moved here.",
        "顧客の開始または移行に初めて使われた時点の各バージョンです。顧客はここで移行するまで、"
        "開始時のバージョンのまま進みます。",
    ),
    "playbooks_none": (
        "No version recorded yet: one is recorded when it starts a customer.",
        "まだ記録されたバージョンはありません。顧客を開始すると記録されます。",
    ),
    "col_version": ("Version", "バージョン"),
    "col_name": ("Name", "名前"),
    "col_first_used": ("First used", "初回使用"),
    "col_ongoing": ("Ongoing", "進行中"),
    "col_ended": ("Ended", "終了"),
    "col_customer": ("Customer", "顧客"),
    "col_change": ("What changes", "変更内容"),
    "migrate_title": ("Move customers to another version", "顧客を別のバージョンへ移行"),
    "migrate_from": ("Customers on", "対象（現在のバージョン）"),
    "migrate_to": ("Move to", "移行先"),
    "migrate_reason": ("Why (on each timeline)", "理由（各タイムラインに記録）"),
    "migrate_preview": ("Preview", "プレビュー"),
    "migrate_apply": ("Move {n} customer(s)", "{n} 社を移行"),
    "migrate_differences": ("{old} → {new}: what changes", "{old} → {new} の変更点"),
    "migrate_same": ("The two versions are the same playbook.", "2 つのバージョンは同じ内容です。"),
    "migrate_preview_title": (
        "Dry run: nothing has changed yet",
        "ドライラン: まだ何も変更していません",
    ),
    "migrate_result_title": (
        "{moved} moved to {version}, {refused} refused",
        "{moved} 社を {version} へ移行、{refused} 社は対象外",
    ),
    "migrate_nobody": (
        "No ongoing customer is on {version}.",
        "{version} で進行中の顧客はいません。",
    ),
    "migrate_pick": (
        "Choose two different versions and give a reason.",
        "異なる 2 つのバージョンを選び、理由を入力してください。",
    ),
    "migrate_unknown": ("Unknown version: {version}", "不明なバージョン: {version}"),
}

for _key, (_en, _ja) in PLAYBOOK_WORDS.items():
    EN[_key] = _en
    JA[_key] = _ja

# A customer's adjustments (models.overrides.OverriddenValue) on its page and timeline:
# `override_<setting>` names each, `{subject}` being its criterion or step, `{stage}`
# its stage's name.
OVERRIDE_WORDS: dict[str, tuple[str, str]] = {
    "override_threshold": ("threshold {subject}", "基準 {subject} のしきい値"),
    "override_remind_csm_after": (
        "{stage}: reminder to the CSM after",
        "{stage}：CSM へのリマインドまで",
    ),
    "override_escalate_to_leader_after": (
        "{stage}: escalation to the leader after",
        "{stage}：リーダーへのエスカレーションまで",
    ),
    "override_measurement_weekday": ("measurement weekday", "計測の曜日"),
    "override_measurement_hour": ("measurement hour", "計測の時刻"),
    "override_deadline": ("deadline", "期限"),
    "override_skip_step": ("step {subject}", "ステップ {subject}"),
    "override_step_sent": ("sent", "送信する"),
    "override_step_skipped": ("skipped", "送信しない"),
    "weekday_long_0": ("Monday", "月曜日"),
    "weekday_long_1": ("Tuesday", "火曜日"),
    "weekday_long_2": ("Wednesday", "水曜日"),
    "weekday_long_3": ("Thursday", "木曜日"),
    "weekday_long_4": ("Friday", "金曜日"),
    "weekday_long_5": ("Saturday", "土曜日"),
    "weekday_long_6": ("Sunday", "日曜日"),
}

for _key, (_en, _ja) in OVERRIDE_WORDS.items():
    EN[_key] = _en
    JA[_key] = _ja

CATALOGUE: dict[Locale, dict[str, str]] = {"en": EN, "ja": JA}


class Translator:
    """`t("key", n=3)`: the text of one key in the request's locale."""

    def __init__(self, locale: Locale) -> None:
        self.locale = locale
        self._messages = CATALOGUE[locale]

    def __call__(self, key: str, **values: Any) -> str:
        text = self._messages.get(key) or EN[key]
        return text.format(**values) if values else text

    def maybe(self, key: str, fallback: str) -> str:
        """For open-ended names (timeline kinds from a newer workflow): the key or `fallback`."""
        text = self._messages.get(key) or EN.get(key)
        return text if text is not None else fallback


def parse_locale(value: str | None) -> Locale | None:
    if value is None:
        return None
    value = value.strip().lower()
    for locale in LOCALES:
        if value == locale:
            return locale
    return None


def negotiate(
    query: str | None, cookie: str | None, accept_language: str | None
) -> tuple[Locale, bool]:
    """The locale for a request and whether the choice should be remembered in the cookie:
    ?lang= first, then the cookie, then Accept-Language, then English."""
    chosen = parse_locale(query)
    if chosen is not None:
        return chosen, chosen != parse_locale(cookie)
    remembered = parse_locale(cookie)
    if remembered is not None:
        return remembered, False
    return _from_accept_language(accept_language or ""), False


def _from_accept_language(header: str) -> Locale:
    ranked: list[tuple[float, int, Locale]] = []
    for position, part in enumerate(header.split(",")):
        tag, _, params = part.strip().partition(";")
        quality = 1.0
        params = params.strip()
        if params.startswith("q="):
            try:
                quality = float(params[2:])
            except ValueError:
                continue
        primary = parse_locale(tag.split("-")[0])
        if primary is not None and quality > 0:
            # Highest quality first, then the order the browser gave.
            ranked.append((-quality, position, primary))
    return min(ranked)[2] if ranked else DEFAULT_LOCALE
