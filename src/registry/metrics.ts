/** The registry's counters, rendered in Prometheus' text exposition format on /metrics. */

const BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];

export class Metrics {
  private readonly requests = new Map<string, number>();
  private readonly buckets = new Array<number>(BUCKETS.length).fill(0);
  private latencySum = 0;
  private latencyCount = 0;
  bytesIn = 0;
  bytesOut = 0;

  observe(method: string, status: number, seconds: number): void {
    const key = `${method}\u0000${status}`;
    this.requests.set(key, (this.requests.get(key) ?? 0) + 1);
    for (let i = 0; i < BUCKETS.length; i++) if (seconds <= BUCKETS[i]) this.buckets[i]++;
    this.latencySum += seconds;
    this.latencyCount++;
  }

  render(storage: { bytes: number; blobs: number; repositories: number }): string {
    const lines: string[] = [
      "# HELP berth_registry_requests_total HTTP requests served, by method and status.",
      "# TYPE berth_registry_requests_total counter",
    ];
    for (const [k, v] of [...this.requests].sort()) {
      const [method, status] = k.split("\u0000");
      lines.push(`berth_registry_requests_total{method="${method}",status="${status}"} ${v}`);
    }
    lines.push(
      "# HELP berth_registry_received_bytes_total Request body bytes received.",
      "# TYPE berth_registry_received_bytes_total counter",
      `berth_registry_received_bytes_total ${this.bytesIn}`,
      "# HELP berth_registry_sent_bytes_total Response body bytes sent.",
      "# TYPE berth_registry_sent_bytes_total counter",
      `berth_registry_sent_bytes_total ${this.bytesOut}`,
      "# HELP berth_registry_request_duration_seconds Time to serve a request.",
      "# TYPE berth_registry_request_duration_seconds histogram",
    );
    BUCKETS.forEach((b, i) => lines.push(`berth_registry_request_duration_seconds_bucket{le="${b}"} ${this.buckets[i]}`));
    lines.push(
      `berth_registry_request_duration_seconds_bucket{le="+Inf"} ${this.latencyCount}`,
      `berth_registry_request_duration_seconds_sum ${this.latencySum}`,
      `berth_registry_request_duration_seconds_count ${this.latencyCount}`,
      "# HELP berth_registry_storage_bytes Bytes of blobs in the store.",
      "# TYPE berth_registry_storage_bytes gauge",
      `berth_registry_storage_bytes ${storage.bytes}`,
      "# HELP berth_registry_storage_blobs Blobs in the store.",
      "# TYPE berth_registry_storage_blobs gauge",
      `berth_registry_storage_blobs ${storage.blobs}`,
      "# HELP berth_registry_repositories Repositories in the store.",
      "# TYPE berth_registry_repositories gauge",
      `berth_registry_repositories ${storage.repositories}`,
    );
    return lines.join("\n") + "\n";
  }
}
