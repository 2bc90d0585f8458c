"""llama-server's read-only model endpoints, for tools written against it: GET /props
(a model's context, slots, template and special tokens) and GET /slots (which decode
slots hold a sequence). A mesh serves several models: `?model=NAME` picks one, and may be
left out when the process serves one model or has a `default_model`."""

from __future__ import annotations

from collections.abc import Mapping
from importlib import metadata

from fastapi import Request

from demigod.api.errors import APIError
from demigod.engines.base import BatchingEngine, SchedulerStats
from demigod.engines.chat_template import DEFAULT_TEMPLATE
from demigod.gateway.front_door import FrontDoor
from demigod.mesh import ServedModel
from demigod.protocol import CompletionFields, GenerationDefaults, ModelProps, SlotState
from demigod.security.authenticate import require_model

# The defaults a request that sets nothing gets, read off the request model itself.
_DEFAULTS = CompletionFields.model_fields


class ServingProps:
    def __init__(
        self, front: FrontDoor, embedded: Mapping[str, ServedModel], default: str | None
    ) -> None:
        """`default`: the model answered for when the request names none (the config's
        default_model); with one embedded model, that one."""
        self._front = front
        self._embedded = embedded
        self._default = default

    async def props(self, request: Request, model: str | None) -> ModelProps:
        """`model`'s properties. Raises APIError as `_served` does."""
        served = await self._served(request, model)
        info = served.engine.info
        return ModelProps(
            model_alias=served.name,
            version=served.version,
            architecture=info.architecture,
            default_generation_settings=GenerationDefaults(
                n_ctx=info.n_ctx,
                temperature=_DEFAULTS["temperature"].default,
                top_p=_DEFAULTS["top_p"].default,
            ),
            total_slots=_slots(served).slots,
            chat_template=info.chat_template or DEFAULT_TEMPLATE,
            bos_token=info.bos_token,
            eos_token=info.eos_token,
            build_info=f"llama-cpp-python {metadata.version('llama-cpp-python')}",
        )

    async def slots(self, request: Request, model: str | None) -> list[SlotState]:
        """`model`'s decode slots and whether each holds a sequence now. Raises APIError
        as `_served` does."""
        served = await self._served(request, model)
        stats = _slots(served)
        n_ctx = served.engine.info.n_ctx
        return [
            SlotState(id=slot, n_ctx=n_ctx, is_processing=slot in stats.busy_slots)
            for slot in range(stats.slots)
        ]

    async def _served(self, request: Request, model: str | None) -> ServedModel:
        """The embedded model `model` names (or the default), once the caller is admitted
        and may use it. Raises the admission steps' refusals, APIError 400 when no model is
        named and none is the default, 404 for a model not served here, 403 for one the
        caller may not use."""
        admission = await self._front.identify(request, "models")
        only = next(iter(self._embedded)) if len(self._embedded) == 1 else None
        name = model or self._default or only
        if name is None:
            raise APIError(
                400,
                f"this process serves several models: name one "
                f"(?model={'|'.join(sorted(self._embedded))})",
                param="model",
            )
        served = self._embedded.get(name)
        if served is None:
            raise APIError(
                404,
                f"model {name!r} is not served by this process; "
                f"served: {', '.join(sorted(self._embedded)) or 'none'}",
                type="not_found_error",
                param="model",
                code="model_not_found",
            )
        require_model(admission, served.name)
        return served


def _slots(served: ServedModel) -> SchedulerStats:
    """The engine's slot occupancy (none for an engine without decode slots)."""
    engine = served.engine
    return engine.scheduler_stats() if isinstance(engine, BatchingEngine) else SchedulerStats()
