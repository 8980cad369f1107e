"""serve stage: the OpenAI-compatible RAG chat server, its generation backends and an in-process generator.

Public API (imported lazily, so `import serve` loads neither torch nor FastAPI):
  create_app(settings=None, backend=None, **settings_fields) -> FastAPI
  resolve_backend(name, model=None) -> the backend `name` ("auto" included) means here for `model`
  load_generator(model_dir, backend="transformers") -> Generator with
      .generate(list_of_message_lists, max_tokens=64, stop=None, seed=0) -> list[Completion]
  start_server(model_dir, index_dir, retriever=None, port=0, api_key=None, extra_args=()) -> ServerHandle
"""

from __future__ import annotations

from ragtune.lazy import lazy_exports

_EXPORTS = {
    "create_app": "serve.app",
    "ServeSettings": "serve.config",
    "load_serve_settings": "serve.config",
    "load_generator": "serve.backends",
    "load_backend": "serve.backends",
    "resolve_backend": "serve.backends",
    "Generator": "serve.backends",
    "start_server": "serve.launcher",
    "ServerHandle": "serve.launcher",
    "Completion": "serve.types",
    "SamplingOptions": "serve.types",
}

__all__ = tuple(sorted(_EXPORTS))
__getattr__ = lazy_exports(__name__, _EXPORTS)
