"""The storage proxy's gRPC service: Optuna's, over :class:`~xtune.search.proxy_cache.ProxyCache`,
with each trial turned into its protobuf message once.

Every worker's ``get_all_trials`` asks for every unfinished trial (Optuna's client cache keeps
only finished ones), so at 128 workers each call ships about 128 trials, and Optuna's service
builds each message anew. Here a trial's message is kept with the trial object it was built
from: the cache hands an unchanged trial back as the same object (a finished one for good),
so each is built once and copied into every reply that carries it.
"""

from __future__ import annotations

from typing import Any

from optuna.storages import RDBStorage
from optuna.storages._grpc.auto_generated import api_pb2
from optuna.storages._grpc.servicer import OptunaStorageProxyService, _to_proto_trial
from optuna.trial import FrozenTrial

from xtune.search.proxy_cache import ProxyCache

KEPT_MESSAGES = 100_000  # trials whose message is kept (a few KB each), then start afresh


class ProxyService(OptunaStorageProxyService):
    """Optuna's storage service over a :class:`ProxyCache` of ``database``."""

    def __init__(self, database: RDBStorage) -> None:
        super().__init__(ProxyCache(database))
        self._messages: dict[int, tuple[FrozenTrial, Any]] = {}

    def GetTrials(self, request: Any, context: Any) -> Any:
        """The study's trials above ``trial_id_greater_than`` and the ``included_trial_ids``."""
        import grpc  # type: ignore[import-untyped]

        try:
            trials = self._backend.get_all_trials(request.study_id, deepcopy=False)
        except KeyError as exc:
            context.abort(code=grpc.StatusCode.NOT_FOUND, details=str(exc))
        included, after = set(request.included_trial_ids), request.trial_id_greater_than
        wanted = [t for t in trials if t._trial_id > after or t._trial_id in included]
        return api_pb2.GetTrialsReply(trials=[self._message(t) for t in wanted])

    def _message(self, trial: FrozenTrial) -> Any:
        kept = self._messages.get(trial._trial_id)
        if kept is not None and kept[0] is trial:
            return kept[1]
        if len(self._messages) >= KEPT_MESSAGES:
            self._messages.clear()
        message = _to_proto_trial(trial)
        self._messages[trial._trial_id] = (trial, message)
        return message
