"""What leaves sessions_app for the rest of the service. sessions_app never imports its listeners
(messaging subscribes in its AppConfig.ready); every signal is sent with sender=WhatsAppSession.

session_status_changed(session_id: str, status: str, reason: str | None)
    After the commit that changed a session's status (a SessionStatus value).
session_status_recorded(session_id: str, status: str, reason: str | None, phone: str, webhook_urls: list[str])
    Inside the transaction that changes a session's status, before it commits: a receiver's writes
    commit (or roll back) with the change (an exception rolls it back).
message_receipt(session_id: str, wa_message_ids: list[str], type: str, timestamp: float)
    WhatsApp reported messages sent through the session as "delivered", "read" or "played"
    (timestamp: unix seconds). Sent on the supervisor's event loop: a receiver must not block.
supervisor_started(supervisor) / supervisor_stopping(supervisor)
    Sent on the supervisor's event loop (sessions_app.worker.Supervisor), so a receiver can start
    its own tasks there with asyncio.get_running_loop().create_task(...) and use `supervisor.call(...)`
    to send through a session; on stopping, before the session processes are stopped (a receiver
    may return an awaitable, which the supervisor awaits first).
"""

from django.dispatch import Signal

session_status_changed = Signal()
session_status_recorded = Signal()
message_receipt = Signal()
supervisor_started = Signal()
supervisor_stopping = Signal()
