"""Object names and labels shared by every Kubernetes object the renderer writes."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

APP = "demigod"
GATEWAY = "demigod-gateway"
# The endpoint picker reads this Pod label to pick the engine-metric mapping it applies.
ENGINE_LABEL = "inference.networking.k8s.io/engine-type"
ENGINE_NAME = "demigod"
MODEL_LABEL = "demigod.io/model"
TRACK_LABEL = "demigod.io/track"


def dns_label(text: str, max_length: int = 63) -> str:
    """`text` as a DNS-1123 label; names that had to change get a short hash so two model
    names never collide (`Chat_v2` and `chat-v2`)."""
    clean = re.sub(r"[^a-z0-9-]+", "-", text.lower()).strip("-") or "x"
    if clean == text and len(clean) <= max_length:
        return clean
    digest = hashlib.sha256(text.encode()).hexdigest()[:6]
    return f"{clean[: max_length - 7].rstrip('-')}-{digest}"


@dataclass(frozen=True)
class WorkerName:
    """One worker Deployment: a model's stable version, or its canary candidate."""

    model: str
    candidate: bool = False

    @property
    def track(self) -> str:
        return "candidate" if self.candidate else "stable"

    @property
    def name(self) -> str:
        base = f"demigod-worker-{dns_label(self.model, 40)}"
        return f"{base}-candidate" if self.candidate else base

    def selector(self) -> dict[str, str]:
        """Labels that pick this Deployment's pods (and its Service's endpoints)."""
        return {
            "app.kubernetes.io/name": APP,
            "app.kubernetes.io/component": "worker",
            "app.kubernetes.io/instance": self.name,
        }

    def labels(self) -> dict[str, str]:
        return {
            **self.selector(),
            MODEL_LABEL: dns_label(self.model),
            TRACK_LABEL: self.track,
            ENGINE_LABEL: ENGINE_NAME,
        }


def gateway_selector() -> dict[str, str]:
    return {"app.kubernetes.io/name": APP, "app.kubernetes.io/component": "gateway"}


def metadata(name: str, labels: dict[str, str] | None = None) -> dict[str, object]:
    return {"name": name, "labels": {"app.kubernetes.io/part-of": APP, **(labels or {})}}
