"""Sample data shared by the tests."""

import datetime as dt

from storage import applications as repo
from storage.domain import ApplicationStatus, SubmissionChannel

UTC = dt.UTC
T0 = dt.datetime(2026, 11, 2, 1, 30, tzinfo=UTC)


def record(code: str = "000.00.19.H26-251127-0001", **changes: object) -> repo.ApplicationRecord:
    values: dict[str, object] = {
        "receipt_code": code, "procedure_code": "1.001193",
        "procedure_name": "Thủ tục đăng ký khai sinh", "field": "Hộ tịch",
        "applicant_name": "Nguyễn Văn A", "phone": "0912345678",
        "channel": SubmissionChannel.ONLINE, "received_at": T0,
        "due_at": T0 + dt.timedelta(days=1), "due_estimated": False,
        "status": ApplicationStatus.RECEIVED, "completed_at": None,
    }
    values.update(changes)
    return repo.ApplicationRecord(**values)  # type: ignore[arg-type]

# The sample application every office fixture holds; its phone ends in 5678.
CODE = "000.00.19.H26-251127-0001"
