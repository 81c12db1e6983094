#!/usr/bin/env python3
"""Offline stand-ins for the OpenTelemetry collector and Jaeger (scripts/compose-test.sh).

    otlp_standin.py collector --config=/etc/otelcol/config.yaml
    otlp_standin.py jaeger

Both receive OTLP/gRPC. Requests are handled as raw bytes: the few fields read here
(service.name, trace and span ids, span and metric names) are decoded from the protobuf
wire format directly, so no generated OTLP code is needed. Only for tests on machines
without an image registry; the compose file names the real images.
"""

import json
import os
import queue
import re
import signal
import sys
import threading
import time
from collections import OrderedDict, defaultdict
from concurrent import futures
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

import grpc

TRACES = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
METRICS = "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export"
LOGS = "/opentelemetry.proto.collector.logs.v1.LogsService/Export"


def log(message):
    print(message, flush=True)


# --- protobuf wire format -------------------------------------------------------------


def varint(buf, i):
    shift = result = 0
    while True:
        byte = buf[i]
        i += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, i
        shift += 7


def fields(buf):
    """(field number, value) of each field of one message; LEN values as bytes."""
    i = 0
    while i < len(buf):
        key, i = varint(buf, i)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, i = varint(buf, i)
        elif wire == 1:
            value, i = buf[i : i + 8], i + 8
        elif wire == 2:
            size, i = varint(buf, i)
            value, i = buf[i : i + size], i + size
        elif wire == 5:
            value, i = buf[i : i + 4], i + 4
        else:
            raise ValueError(f"unsupported wire type {wire}")
        yield number, value


def service_name(resource):
    """service.name of an opentelemetry.proto.resource.v1.Resource."""
    for number, attribute in fields(resource):
        if number != 1:
            continue
        key = value = None
        for n, v in fields(attribute):
            if n == 1:
                key = v.decode()
            elif n == 2:
                value = next((s.decode() for k, s in fields(v) if k == 1), None)
        if key == "service.name" and value:
            return value
    return "unknown_service"


def resource_groups(request):
    """(service name, [scope message]) of each Resource{Spans,Metrics} of a request."""
    for number, group in fields(request):
        if number != 1:
            continue
        service, scopes = "unknown_service", []
        for n, v in fields(group):
            if n == 1:
                service = service_name(v)
            elif n == 2:
                scopes.append(v)
        yield service, scopes


def spans(request):
    """The spans of an ExportTraceServiceRequest, in Jaeger's JSON terms."""
    for service, scopes in resource_groups(request):
        for scope in scopes:
            for number, span in fields(scope):
                if number != 2:
                    continue
                out = {"service": service, "parentSpanID": ""}
                start = end = 0
                for n, v in fields(span):
                    if n == 1:
                        out["traceID"] = v.hex()
                    elif n == 2:
                        out["spanID"] = v.hex()
                    elif n == 4:
                        out["parentSpanID"] = v.hex()
                    elif n == 5:
                        out["operationName"] = v.decode()
                    elif n == 7:
                        start = int.from_bytes(v, "little")
                    elif n == 8:
                        end = int.from_bytes(v, "little")
                out["startTime"] = start // 1000
                out["duration"] = max(end - start, 0) // 1000
                yield out


def metric_names(request):
    """(service name, metric name) of each metric of an ExportMetricsServiceRequest."""
    for service, scopes in resource_groups(request):
        for scope in scopes:
            for number, metric in fields(scope):
                if number == 2:
                    name = next((v.decode() for n, v in fields(metric) if n == 1), "")
                    yield service, name


# --- serving ----------------------------------------------------------------------------


class Otlp(grpc.GenericRpcHandler):
    """OTLP/gRPC Export of every signal; `handlers` maps a method to a function of the
    raw request. Signals without a handler are accepted and dropped."""

    def __init__(self, handlers):
        self.handlers = handlers

    def service(self, details):
        if details.method not in (TRACES, METRICS, LOGS):
            return None
        handler = self.handlers.get(details.method)

        def export(request, context):
            try:
                if handler:
                    handler(request)
            except Exception as error:  # a malformed request must not stop the receiver
                log(f"refused a malformed export: {error}")
                context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(error))
            return b""  # an empty Export*ServiceResponse: everything accepted

        return grpc.unary_unary_rpc_method_handler(export)


def serve_grpc(endpoint, handlers):
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
    server.add_generic_rpc_handlers((Otlp(handlers),))
    server.add_insecure_port(endpoint)
    server.start()
    log(f"OTLP/gRPC receiver on {endpoint}")
    return server


def serve_http(endpoint, routes):
    host, _, port = endpoint.rpartition(":")

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            url = urlparse(self.path)
            for pattern, route in routes:
                match = re.fullmatch(pattern, url.path)
                if match:
                    status, kind, body = route(match, parse_qs(url.query))
                    break
            else:
                status, kind, body = 404, "text/plain", "not found\n"
            data = body.encode()
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer((host or "0.0.0.0", int(port)), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    log(f"HTTP on {endpoint}")


# --- collector ----------------------------------------------------------------------------


class Forwarder:
    """An OTLP/gRPC exporter: sends trace exports on, in order, retrying while the
    receiver is not up yet (as the collector's sending queue does)."""

    def __init__(self, name, endpoint):
        self.name, self.endpoint = name, endpoint
        self.export = grpc.insecure_channel(endpoint).unary_unary(TRACES)
        self.queue = queue.Queue(maxsize=10000)
        threading.Thread(target=self.run, daemon=True).start()

    def put(self, request):
        try:
            self.queue.put_nowait(request)
        except queue.Full:
            log(f"exporter {self.name}: queue full, dropping an export")

    def run(self):
        while True:
            request = self.queue.get()
            for attempt in range(30):
                try:
                    self.export(request, timeout=5)
                    break
                except grpc.RpcError as error:
                    if attempt == 29:
                        log(f"exporter {self.name}: dropping an export: {error.code()}")
                    time.sleep(min(0.2 * (attempt + 1), 2))


def collector(argv):
    import yaml

    path = "/etc/otelcol/config.yaml"
    for arg in argv:
        if arg.startswith("--config="):
            path = arg.split("=", 1)[1]
    with open(path) as file:
        config = yaml.safe_load(file)
    receiver = config["receivers"]["otlp"]["protocols"]["grpc"]
    endpoint = receiver.get("endpoint", "0.0.0.0:4317")
    pipelines = config["service"]["pipelines"]
    exporters = config.get("exporters", {})

    forwarders = []
    for name in pipelines.get("traces", {}).get("exporters", []):
        if not name.split("/")[0] == "otlp":
            sys.exit(f"the stand-in cannot export traces to {name!r}")
        settings = exporters[name]
        if not settings.get("tls", {}).get("insecure"):
            sys.exit(f"the stand-in exports without TLS only; {name} asks for TLS")
        forwarders.append(Forwarder(name, settings["endpoint"]))

    counts = defaultdict(int)
    lock = threading.Lock()

    def on_traces(request):
        n = sum(1 for _ in spans(request))
        with lock:
            counts[("spans", "", "")] += n
        for forwarder in forwarders:
            forwarder.put(request)

    def on_metrics(request):
        with lock:
            for service, name in metric_names(request):
                counts[("metric", service, name)] += 1

    def prometheus(_match, _query):
        lines = ["# Stand-in: counts of what was received, not the metrics themselves."]
        with lock:
            for (kind, service, name), count in sorted(counts.items()):
                if kind == "spans":
                    lines.append(f"otlp_standin_received_spans_total {count}")
                else:
                    lines.append(
                        f'otlp_standin_metric_exports_total{{service_name="{service}",metric="{name}"}} {count}'
                    )
        return 200, "text/plain; version=0.0.4", "\n".join(lines) + "\n"

    for name in pipelines.get("metrics", {}).get("exporters", []):
        if name.split("/")[0] == "prometheus":
            serve_http(exporters[name]["endpoint"], [(r"/metrics", prometheus)])
    health = config.get("extensions", {}).get("health_check")
    if health is not None and "health_check" in config["service"].get("extensions", []):
        serve_http(
            health.get("endpoint", "0.0.0.0:13133"),
            [(r"/", lambda *_: (200, "application/json", '{"status":"Server available"}'))],
        )
    server = serve_grpc(endpoint, {TRACES: on_traces, METRICS: on_metrics})
    log(f"collector stand-in up, traces to {[f.endpoint for f in forwarders]}")
    server.wait_for_termination()


# --- jaeger -------------------------------------------------------------------------------


def jaeger(_argv):
    traces = OrderedDict()  # trace id -> [span]; the oldest are forgotten past the limit
    lock = threading.Lock()

    def on_traces(request):
        with lock:
            for span in spans(request):
                traces.setdefault(span["traceID"], []).append(span)
                traces.move_to_end(span["traceID"])
            while len(traces) > 20000:
                traces.popitem(last=False)

    def as_jaeger(trace_id, trace_spans):
        processes, out = {}, []
        for span in trace_spans:
            pid = processes.setdefault(span["service"], f"p{len(processes) + 1}")
            references = []
            if span["parentSpanID"]:
                references.append(
                    {"refType": "CHILD_OF", "traceID": trace_id, "spanID": span["parentSpanID"]}
                )
            out.append(
                {
                    "traceID": trace_id,
                    "spanID": span.get("spanID", ""),
                    "operationName": span.get("operationName", ""),
                    "references": references,
                    "startTime": span["startTime"],
                    "duration": span["duration"],
                    "processID": pid,
                }
            )
        return {
            "traceID": trace_id,
            "spans": out,
            "processes": {pid: {"serviceName": s, "tags": []} for s, pid in processes.items()},
        }

    def reply(data, status=200, errors=None):
        body = {"data": data, "total": 0, "limit": 0, "offset": 0, "errors": errors}
        return status, "application/json", json.dumps(body)

    def one_trace(match, _query):
        trace_id = match.group(1).lower().rjust(32, "0")
        with lock:
            found = list(traces.get(trace_id, []))
        if not found:
            return reply(None, 404, [{"code": 404, "msg": "trace not found"}])
        return reply([as_jaeger(trace_id, found)])

    def find_traces(_match, query):
        service = query.get("service", [""])[0]
        limit = int(query.get("limit", ["20"])[0])
        with lock:
            matching = [
                (tid, list(s)) for tid, s in reversed(traces.items())
                if any(span["service"] == service for span in s)
            ][:limit]
        return reply([as_jaeger(tid, s) for tid, s in matching])

    def services(_match, _query):
        with lock:
            names = sorted({span["service"] for s in traces.values() for span in s})
        return reply(names)

    serve_http(
        "0.0.0.0:16686",
        [
            (r"/api/services", services),
            (r"/api/traces/([0-9a-fA-F]{1,32})", one_trace),
            (r"/api/traces", find_traces),
            (r"/", lambda *_: (200, "text/plain", "Jaeger stand-in: /api/services, /api/traces\n")),
        ],
    )
    if os.environ.get("COLLECTOR_OTLP_ENABLED", "true").lower() != "true":
        sys.exit("the stand-in receives OTLP only: COLLECTOR_OTLP_ENABLED must not be false")
    server = serve_grpc("0.0.0.0:4317", {TRACES: on_traces})
    log("jaeger stand-in up")
    server.wait_for_termination()


if __name__ == "__main__":
    # As PID 1 of its container the process gets no default SIGTERM handling: without
    # this, `docker compose stop` waits out its timeout and then kills it.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    modes = {"collector": collector, "jaeger": jaeger}
    if len(sys.argv) < 2 or sys.argv[1] not in modes:
        sys.exit("usage: otlp_standin.py collector|jaeger [--config=PATH]")
    modes[sys.argv[1]](sys.argv[2:])
