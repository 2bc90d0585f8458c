"""The container images' names: one scheme for `make images` (containers/build-images),
the release workflow (.github/workflows/release.yml), the deploy workflow and every
renderer (Podman, Kubernetes, the Windmill script).

    REGISTRY/demigod-COMPONENT:TAG

COMPONENT is `gateway`, `worker-cpu` or `worker-cuda` (containers/COMPONENT.Containerfile);
a worker runs the CUDA image when placement put it on a GPU node class. `make images` tags
`localhost/...:VERSION`; the release pushes `$IMAGE_REGISTRY/...:VERSION`; the renderers
read REGISTRY and TAG from the `images` section (DEMIGOD_IMAGES__REGISTRY, __TAG).
tests/deploy/test_image_names.py checks that all of them agree.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal

from demigod.config import ImagesConfig

Component = Literal["gateway", "worker-cpu", "worker-cuda"]
GATEWAY: Final = "gateway"
WORKER_CPU: Final = "worker-cpu"
WORKER_CUDA: Final = "worker-cuda"
COMPONENTS: tuple[Component, ...] = (GATEWAY, WORKER_CPU, WORKER_CUDA)
NAME_PREFIX = "demigod-"


def image_name(component: Component) -> str:
    """The repository name of `component`'s image: `demigod-worker-cpu`."""
    return f"{NAME_PREFIX}{component}"


def worker_component(on_gpu: bool) -> Component:
    """The worker image for a placement: CUDA on a GPU node class, else CPU."""
    return WORKER_CUDA if on_gpu else WORKER_CPU


@dataclass(frozen=True)
class ImageSet:
    """Where one deployment's images come from: a registry and one tag for all three."""

    registry: str
    tag: str

    @classmethod
    def from_config(cls, images: ImagesConfig) -> ImageSet:
        return cls(images.registry, images.tag)

    def ref(self, component: Component) -> str:
        """`REGISTRY/demigod-COMPONENT:TAG`."""
        return f"{self.registry}/{image_name(component)}:{self.tag}"

    @property
    def gateway(self) -> str:
        return self.ref(GATEWAY)

    def worker(self, on_gpu: bool) -> str:
        return self.ref(worker_component(on_gpu))
