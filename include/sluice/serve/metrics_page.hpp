// sluice's own metrics in the Prometheus text format (prometheus.hpp): a stream run's live
// counters (stream_metrics), a Lambda engine's status and a Kappa view's status, each sample
// labelled with the flow's name (`query`). What GET /metrics answers in examples/sales.
//
// Names: sluice_<what>[_<unit>], `_total` on counters; times that are milliseconds since the
// epoch or lags in ms end in `_milliseconds` (the engine's own unit), durations in `_seconds`.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <limits>
#include <string>
#include <string_view>
#include <vector>

#include "sluice/lambda/kappa.hpp"
#include "sluice/lambda/lambda_engine.hpp"
#include "sluice/run/stream.hpp"
#include "sluice/serve/prometheus.hpp"

namespace sluice {

namespace detail {
inline double as_double(std::uint64_t v) {
  return static_cast<double>(v);
}
inline double as_double(std::int64_t v) {
  return static_cast<double>(v);
}
/// A watermark that is not known yet (millis::min()) is written as NaN, not as a huge negative.
inline double known_ms(std::int64_t v) {
  return v == millis::min().count() || v == millis::max().count() ? std::numeric_limits<double>::quiet_NaN()
                                                                  : static_cast<double>(v);
}
}  // namespace detail

/// A stream run's counters (run_stream's stream_options::metrics).
inline void write_metrics(prometheus_text& out, std::string_view query, const stream_metrics& m) {
  const prometheus_label l[]{{"query", query}};
  using detail::as_double;
  out.counter("sluice_events", "Records that entered the flow.", l, as_double(m.events.load()));
  out.counter("sluice_bad_records", "Records dead-lettered (or the one that failed the run).", l,
              as_double(m.bad_records.load()));
  out.counter("sluice_late_events", "Events sent to the late output.", l, as_double(m.late_events.load()));
  out.counter("sluice_partly_late_events", "Sliding-window events that missed some of their windows.", l,
              as_double(m.partly_late_events.load()));
  out.counter("sluice_received_bytes", "Bytes received from byte sources.", l, as_double(m.bytes.load()));
  out.counter("sluice_inputs_opened", "Inputs (connections, files, partitions) opened.", l,
              as_double(m.inputs_opened.load()));
  out.gauge("sluice_inputs_open", "Inputs open now.", l, as_double(m.inputs_open.load()));
  out.gauge("sluice_queue_depth", "Chunks (or events, for a queue source) waiting for a worker.", l,
            as_double(m.queued.load()));
  out.counter("sluice_rows_emitted", "Rows sent to the sink.", l, as_double(m.rows_emitted.load()));
  out.gauge("sluice_watermark_milliseconds", "The watermark, ms since the epoch (NaN before the first).", l,
            detail::known_ms(m.watermark.load()));
  out.gauge("sluice_watermark_lag_milliseconds", "How far the watermark trails the latest event time.", l,
            as_double(m.watermark_lag_ms()));
}

/// A Lambda engine's status (lambda_engine::status()).
inline void write_metrics(prometheus_text& out, std::string_view query, const lambda_status& s) {
  const prometheus_label l[]{{"query", query}};
  using detail::as_double;
  out.counter("sluice_ingested", "Records accepted into the log by this process.", l, as_double(s.ingested));
  out.counter("sluice_bad_records", "Records dead-lettered at ingest.", l, as_double(s.bad_records));
  out.counter("sluice_late_events", "Events the speed layer dropped as late.", l, as_double(s.late));
  out.counter("sluice_partly_late_events", "Sliding-window events the speed layer missed some windows of.", l,
              as_double(s.partly_late));
  out.gauge("sluice_log_head_offset", "The next log offset.", l, as_double(s.log_head));
  out.gauge("sluice_log_bytes", "Bytes of the log's segment files.", l, as_double(s.log_bytes));
  out.gauge("sluice_log_sealed_epochs", "Log segments sealed.", l, as_double(s.sealed_epochs));
  out.gauge("sluice_batch_horizon_epoch", "The batch view covers epochs below it.", l, as_double(s.horizon_epoch));
  out.gauge("sluice_batch_horizon_offset", "The batch view covers log offsets below it.", l,
            as_double(s.horizon_offset));
  out.gauge("sluice_batch_horizon_lag_records", "Logged records the batch view does not cover yet.", l,
            as_double(s.log_head - s.horizon_offset));
  out.gauge("sluice_speed_epochs", "Epochs the speed layer holds.", l, as_double(std::uint64_t{s.speed_epochs.size()}));
  out.counter("sluice_batch_runs", "Batch runs published.", l, as_double(s.batch_runs));
  out.counter("sluice_promoted_epochs", "Epochs published from the speed layer's state.", l,
              as_double(s.promoted_epochs));
  histogram_snapshot runs{.bounds = {lambda_batch_seconds_bounds.begin(), lambda_batch_seconds_bounds.end()},
                          .counts = {s.batch_seconds_counts.begin(), s.batch_seconds_counts.end()},
                          .sum = s.batch_seconds_sum};
  out.histogram("sluice_batch_run_seconds", "Duration of the batch runs.", l, runs);
  out.gauge("sluice_watermark_milliseconds", "The watermark, ms since the epoch (NaN before the first).", l,
            detail::known_ms(s.watermark));
  out.gauge("sluice_batch_view_entries", "Entries of the batch view.", l, as_double(s.batch_entries));
  out.gauge("sluice_batch_view_bytes", "Bytes of the batch view's tables.", l, as_double(s.batch_table_bytes));
  out.gauge("sluice_speed_entries", "Entries the speed layer holds.", l, as_double(s.speed_entries));
  out.gauge("sluice_speed_bytes", "Bytes of the speed layer's tables.", l, as_double(s.speed_table_bytes));
}

/// A Kappa view's status (kappa_view::status()).
inline void write_metrics(prometheus_text& out, std::string_view query, const kappa_status& s) {
  const prometheus_label l[]{{"query", query}};
  using detail::as_double;
  out.counter("sluice_events", "Records the serving generation processed.", l, as_double(s.events));
  out.counter("sluice_late_events", "Events the serving generation dropped as late.", l, as_double(s.late));
  out.counter("sluice_bad_records", "Payloads that did not decode.", l, as_double(s.bad_records));
  out.gauge("sluice_kappa_serving_generation", "The generation serving (0: none caught up yet).", l,
            as_double(s.serving_generation));
  out.gauge("sluice_kappa_serving_offset", "The next log offset the serving generation reads.", l,
            as_double(s.serving_position));
  out.gauge("sluice_kappa_replay_lag_records", "Records the catching-up replay has still to read.", l,
            as_double(s.replay_target - std::min(s.replay_target, s.replay_position)));
}

/// A checkpointed stream run's checkpoints (stream_options::checkpoints).
inline void write_metrics(prometheus_text& out, std::string_view query, const stream_checkpoints& c) {
  const prometheus_label l[]{{"query", query}};
  out.counter("sluice_checkpoints_written", "Checkpoints of an input's (a partition's) state and position written.",
              l, detail::as_double(c.saved.load()));
  out.counter("sluice_checkpoint_restores", "Inputs (partitions) that opened from a saved checkpoint.", l,
              detail::as_double(c.restored.load()));
  const auto now_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                          std::chrono::system_clock::now().time_since_epoch())
                          .count();
  for (const auto& p : c.published()) {
    const prometheus_label li[]{{"query", query}, {"input", p.input}};
    out.gauge("sluice_checkpoint_age_seconds", "Time since the latest checkpoint of an input (a partition) held here.",
              li, static_cast<double>(now_ms - p.saved_at_ms) / 1000.0);
  }
}

/// GET /metrics's page for one or more status or metrics structs (a stream's metrics and its
/// checkpoints, say), each written by a write_metrics overload (found by ADL for a host's own).
template <class... Status>
std::string metrics_page(std::string_view query, const Status&... s) {
  prometheus_text out;
  (write_metrics(out, query, s), ...);
  return std::move(out).str();
}

}  // namespace sluice
