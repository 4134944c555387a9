"""An application instrumented as real apps are, run in its own process by the OTLP ingestion tests.

    python -m tests.support.otel_app KIND MODEL_BASE_URL

KIND is `openai-v2` (opentelemetry-instrumentation-openai-v2), `openinference`
(openinference-instrumentation-openai) or `langfuse` (the Langfuse SDK). The app runs one agent step: a
parent span, inside it a chat call to the OpenAI-compatible model server at MODEL_BASE_URL (with a tool
definition), then a tool span; it exports to the endpoint the standard environment names
(OTEL_EXPORTER_OTLP_TRACES_ENDPOINT; for Langfuse LANGFUSE_HOST / LANGFUSE_PUBLIC_KEY /
LANGFUSE_SECRET_KEY), flushes and exits. It prints the trace id it used.
"""

from __future__ import annotations

import sys

WEATHER = {
    "type": "function",
    "function": {
        "name": "weather",
        "description": "The weather in a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    },
}
MESSAGES = [
    {"role": "system", "content": "You answer about the weather."},
    {"role": "user", "content": "Weather in Paris?"},
]


def otel(kind: str, base_url: str) -> None:
    import openai
    from opentelemetry import trace
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    provider = TracerProvider(resource=Resource.create({"service.name": f"weather-app-{kind}"}))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(provider)
    if kind == "openai-v2":
        from opentelemetry.instrumentation.openai_v2 import OpenAIInstrumentor

        OpenAIInstrumentor().instrument(tracer_provider=provider)
    else:
        from openinference.instrumentation.openai import OpenAIInstrumentor as OpenInference

        OpenInference().instrument(tracer_provider=provider)
    tracer = trace.get_tracer("weather-app")
    client = openai.OpenAI(base_url=base_url, api_key="sk-test-not-a-key", max_retries=0)
    with tracer.start_as_current_span("agent step", attributes={"app.step": 1}) as root:
        client.chat.completions.create(
            model="gpt-4o-mini", messages=MESSAGES, temperature=0.2, max_tokens=50, tools=[WEATHER]
        )
        with tracer.start_as_current_span(
            "execute_tool weather",
            attributes={"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": "weather"},
        ):
            pass
        print(format(root.get_span_context().trace_id, "032x"))
    provider.shutdown()  # flushes the batch


def langfuse(base_url: str) -> None:
    import openai
    from langfuse import Langfuse

    lf = Langfuse()  # LANGFUSE_HOST, LANGFUSE_PUBLIC_KEY, LANGFUSE_SECRET_KEY from the environment
    client = openai.OpenAI(base_url=base_url, api_key="sk-test-not-a-key", max_retries=0)
    with lf.start_as_current_observation(as_type="span", name="agent step") as root:
        root.update(input={"question": "Weather in Paris?"}, metadata={"team": "weather"})
        with lf.start_as_current_observation(
            as_type="generation", name="llm", model="gpt-4o-mini", input=MESSAGES
        ) as gen:
            reply = client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)  # type: ignore[arg-type]
            usage = reply.usage
            gen.update(
                output={"role": "assistant", "content": reply.choices[0].message.content},
                usage_details={"input": usage.prompt_tokens, "output": usage.completion_tokens}
                if usage
                else None,
            )
        with lf.start_as_current_observation(as_type="tool", name="weather") as tool:
            tool.update(input={"city": "Paris"}, output="21 C")
        root.update(output="It is 21 C in Paris.")
        print(root.trace_id)
    lf.flush()
    lf.shutdown()


if __name__ == "__main__":
    which, url = sys.argv[1], sys.argv[2]
    if which == "langfuse":
        langfuse(url)
    else:
        otel(which, url)
