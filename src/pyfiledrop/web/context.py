"""What every handler needs, built once per process in the app's lifespan."""

from __future__ import annotations

from dataclasses import dataclass, field

from pyfiledrop.awake.tracker import Tracker
from pyfiledrop.config import Settings
from pyfiledrop.domain.ids import UploadId
from pyfiledrop.engine.lifecycle import Lifecycle
from pyfiledrop.engine.service import UploadService
from pyfiledrop.meta.shares import ShareStore
from pyfiledrop.video.jobs import VideoJobs
from pyfiledrop.web.access import Access
from pyfiledrop.web.auth import Authenticator
from pyfiledrop.web.http import Request


@dataclass(frozen=True, slots=True)
class Context:
    settings: Settings
    service: UploadService
    auth: Authenticator
    tus_extensions: tuple[str, ...]
    lifecycle: Lifecycle
    shares: ShareStore
    access: Access
    awake: Tracker = field(default_factory=lambda: Tracker("never"))  # counts transfers, keeps the host awake
    video: VideoJobs | None = None  # trim and rotate jobs (video/jobs.py)

    @property
    def idle_timeout(self) -> float:
        return self.settings.timeout / 1000

    def base_url(self, request: Request) -> str:
        return request.base_url(self.settings.public_url)

    def tus_url(self, request: Request, upload_id: UploadId) -> str:
        return f"{self.base_url(request)}/files/{upload_id}"

    def download_url(self, request: Request, upload_id: UploadId) -> str:
        return f"{self.base_url(request)}/download/{upload_id}"
