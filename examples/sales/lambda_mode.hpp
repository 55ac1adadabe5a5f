// The sales queries in Lambda and Kappa mode, served over HTTP.
//
//   sales QUERY --lambda --log DIR --listen HOST:PORT --serve HOST:PORT ...
//       TCP rows -> event log -> speed layer; batch layer over sealed segments; GET /QUERY
//       answers V_E (+) speed, GET /status shows the horizon, epochs and counts, GET /metrics
//       the same for Prometheus, GET /flow the query's flow (Graphviz DOT; ?format=svg when Graphviz is installed).
//   sales QUERY --replay DIR [--serve HOST:PORT]
//       Kappa: the stream path replayed over the log; prints the answer at the head, or serves
//       it and keeps tailing.
#pragma once

#include <algorithm>
#include <charconv>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <stop_token>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include <fmt/core.h>

#if defined(__GLIBC__)
#include <malloc.h>  // mallopt
#endif

#include "sales.hpp"
#include "sluice/io/csv.hpp"
#include "sluice/io/json_text.hpp"
#include "sluice/io/log_source.hpp"
#include "sluice/io/stream_format.hpp"
#include "sluice/io/tcp_source.hpp"
#include "sluice/io/terminal_progress.hpp"
#include "sluice/io/text_file.hpp"
#include "sluice/lambda/ingest.hpp"
#include "sluice/lambda/kappa.hpp"
#include "sluice/lambda/lambda_engine.hpp"
#include "sluice/serve/flow_page.hpp"
#include "sluice/serve/http_server.hpp"
#include "sluice/serve/metrics_page.hpp"

namespace sales {

struct lambda_settings {
  std::string query;  // the name: GET /<query>
  std::string log_dir;
  std::string listen;  // ingest (lambda)
  std::string serve;   // HTTP, "" for none (replay prints and exits)
  std::uint64_t connections = 0;
  sluice::lambda_options engine;
  std::string late_output;
  std::optional<std::int64_t> from_time;  // replay from this event time (ms)
};

/// Query rows as CSV (header first) -> a JSON array of objects keyed by column name; a field
/// that is a decimal number stays a number (its exact text), anything else is a string. The CSV
/// is read back with sluice's own tokenizer, so quoted fields keep their commas and quotes.
inline std::string csv_to_json(std::string_view csv) {
  auto is_number = [](std::string_view v) {
    std::size_t i = v.starts_with('-') ? 1 : 0;
    bool digits = false;
    bool dot = false;
    for (; i < v.size(); ++i) {
      if (v[i] >= '0' && v[i] <= '9') {
        digits = true;
      } else if (v[i] == '.' && !dot) {
        dot = true;
      } else {
        return false;
      }
    }
    return digits;
  };
  constexpr std::size_t max_columns = 64;
  sluice::detail::csv_tokenizer tokenizer(',', max_columns);
  std::vector<std::string> names;
  std::string out = "[";
  bool first_row = true;
  const char* p = csv.data();
  const char* const end = p + csv.size();
  while (p < end) {
    const auto r = tokenizer.tokenize(p, end, true, csv.size());
    if (r.st != sluice::detail::csv_tokenizer::status::ok) {
      throw std::logic_error("csv_to_json: the rows are not valid CSV");  // we wrote them: a bug
    }
    p = r.next;
    const std::size_t fields = std::min(r.fields, max_columns);
    if (names.empty()) {
      for (std::size_t i = 0; i < fields; ++i) {
        names.emplace_back(tokenizer.field(i));
      }
      continue;
    }
    out += first_row ? "\n{" : ",\n{";
    first_row = false;
    for (std::size_t i = 0; i < fields && i < names.size(); ++i) {
      if (i > 0) {
        out += ',';
      }
      sluice::detail::append_json_string(out, names[i]);
      out += ':';
      const std::string_view field = tokenizer.field(i);
      if (is_number(field)) {
        out += field;
      } else {
        sluice::detail::append_json_string(out, field);
      }
    }
    out += '}';
  }
  out += "\n]\n";
  return out;
}

/// GET /QUERY[?format=csv|json][&window_start=MS]: the answer `rows_csv()` gives now, in the
/// asked format. When rows_csv takes a row_filter, window_start (ms since the epoch) picks one
/// window's rows.
template <class RowsCsv>
sluice::http_response query_response(const sluice::http_request& request, RowsCsv&& rows_csv) {
  constexpr bool filters = std::is_invocable_v<RowsCsv&, const row_filter&>;
  bool json = false;
  row_filter filter;
  for (const auto& [name, value] : request.params) {
    if (name == "format") {
      if (value != "csv" && value != "json") {
        throw sluice::http_error(400, "format is csv or json, not '" + value + "'");
      }
      json = value == "json";
    } else if (name == "window_start" && filters) {
      std::int64_t ms = 0;
      const auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), ms);
      if (ec != std::errc{} || end != value.data() + value.size()) {
        throw sluice::http_error(400, "window_start takes milliseconds since the epoch, not '" + value + "'");
      }
      filter.window_start = sluice::millis{ms};
    } else {
      throw sluice::http_error(
          400, "unknown parameter '" + name + (filters ? "' (known: format, window_start)" : "' (known: format)"));
    }
  }
  std::string csv;
  if constexpr (filters) {
    csv = rows_csv(filter);
  } else {
    csv = rows_csv();
  }
  return json ? sluice::http_response::json(csv_to_json(csv)) : sluice::http_response::csv(std::move(csv));
}

inline std::string status_json(std::string_view query, const sluice::lambda_status& s,
                               const std::optional<std::string>& batch_error) {
  std::string epochs;
  for (const std::uint64_t e : s.speed_epochs) {
    epochs += (epochs.empty() ? "" : ",") + std::to_string(e);
  }
  std::string recovery = "null";
  if (s.recovery) {
    recovery.clear();
    recovery += fmt::format("{{\"segment\":");
    sluice::detail::append_json_string(recovery, s.recovery->segment);
    recovery +=
        fmt::format(",\"kept_bytes\":{},\"cut_bytes\":{},\"first_lost_offset\":{},\"reason\":", s.recovery->kept_bytes,
                    s.recovery->cut_bytes, s.recovery->first_lost_offset);
    sluice::detail::append_json_string(recovery, s.recovery->reason);
    recovery += '}';
  }
  // Before the first event: no watermark yet.
  const std::string watermark =
      s.watermark == sluice::millis::min().count() ? std::string("null") : std::to_string(s.watermark);
  // Null when nothing is dropped (no --retain, or no watermark yet).
  const std::string retention =
      s.retention_horizon == sluice::millis::min().count() ? std::string("null") : std::to_string(s.retention_horizon);
  std::string error = "null";
  if (batch_error) {
    error.clear();
    sluice::detail::append_json_string(error, *batch_error);
  }
  return fmt::format(
      "{{\"mode\":\"lambda\",\"query\":\"{}\",\"log_head\":{},\"sealed_epochs\":{},"
      "\"batch_horizon\":{{\"epoch\":{},\"offset\":{}}},\"caught_up\":{},\"speed_epochs\":[{}],"
      "\"ingested\":{},\"late\":{},\"late_not_covered\":{},\"partly_late\":{},\"dead_lettered\":{},"
      "\"batch_runs\":{},\"promoted_epochs\":{},\"last_batch_seconds\":{:.6f},\"last_batch_records\":{},\"watermark\":{"
      "},"
      "\"retention_horizon\":{},\"batch_view\":{{\"entries\":{},\"table_bytes\":{}}},"
      "\"speed_layer\":{{\"entries\":{},\"table_bytes\":{}}},\"recovery\":{},\"batch_error\":{}}}\n",
      query, s.log_head, s.sealed_epochs, s.horizon_epoch, s.horizon_offset,
      s.horizon_offset == s.log_head ? "true" : "false", epochs, s.ingested, s.late, s.late_not_covered, s.partly_late,
      s.bad_records, s.batch_runs, s.promoted_epochs, s.last_batch_seconds, s.last_batch_records, watermark, retention,
      s.batch_entries, s.batch_table_bytes, s.speed_entries, s.speed_table_bytes, recovery, error);
}

inline std::string status_json(std::string_view query, const sluice::stream_metrics& m) {
  const std::int64_t w = m.watermark.load();
  return fmt::format(
      "{{\"mode\":\"stream\",\"query\":\"{}\",\"events\":{},\"dead_lettered\":{},\"late\":{},\"partly_late\":{},"
      "\"bytes\":{},\"inputs_opened\":{},\"inputs_open\":{},\"queued\":{},\"rows_emitted\":{},\"watermark\":{},"
      "\"watermark_lag_ms\":{}}}\n",
      query, m.events.load(), m.bad_records.load(), m.late_events.load(), m.partly_late_events.load(), m.bytes.load(),
      m.inputs_opened.load(), m.inputs_open.load(), m.queued.load(), m.rows_emitted.load(),
      w == sluice::millis::min().count() || w == sluice::millis::max().count() ? std::string("null")
                                                                               : std::to_string(w),
      m.watermark_lag_ms());
}

inline std::string status_json(std::string_view query, const sluice::kappa_status& s) {
  return fmt::format(
      "{{\"mode\":\"kappa\",\"query\":\"{}\",\"serving_generation\":{},\"serving_position\":{},"
      "\"replaying_generation\":{},\"replay_position\":{},\"replay_target\":{},\"events\":{},\"late\":{},"
      "\"dead_lettered\":{}}}\n",
      query, s.serving_generation, s.serving_position, s.replaying_generation, s.replay_position, s.replay_target,
      s.events, s.late, s.bad_records);
}

/// Block until `stop` is requested (SIGINT/SIGTERM): the servers keep serving meanwhile.
inline void wait_until_stopped(const std::stop_token& stop) {
  std::mutex m;
  std::condition_variable_any cv;
  std::unique_lock lock(m);
  cv.wait(lock, stop, [] { return false; });  // returns once stop is requested
}

/// GET /metrics: `status()`'s metrics in the Prometheus text format.
template <class Status>
void add_metrics_route(sluice::http_router& router, std::string query, Status status) {
  router.add("/metrics", [query = std::move(query), status = std::move(status)](const sluice::http_request&) {
    return sluice::http_response{200, std::string(sluice::prometheus_content_type),
                                 sluice::metrics_page(query, status())};
  });
}

/// Serve `router` on `listen`, announcing the address on stderr.
inline std::unique_ptr<sluice::http_server> start_serving(const std::string& listen, sluice::http_router router) {
  auto server = std::make_unique<sluice::http_server>(std::move(router), sluice::http_options{.listen = listen});
  std::fprintf(stderr, "sales: serving on http://%s\n", server->local_endpoint().c_str());
  std::fflush(stderr);
  return server;
}

/// A long-running Lambda process allocates and frees large tables all the time (a shard rebuilt
/// per publish, a batch run's partials, a retired speed epoch). glibc raises its mmap threshold
/// to the largest block freed, after which such tables come from the heap and their memory is
/// not returned: on 10M rows of `popular --retain 1h` peak RSS was 797 MB, 517 MB with the
/// threshold held at 1 MiB (and RSS at the end the batch view's 277 MB of tables).
inline void return_freed_tables_to_the_os() {
#if defined(__GLIBC__)
  mallopt(M_MMAP_THRESHOLD, 1 << 20);
#endif
}

template <class Query>
std::string lambda_mode(const lambda_settings& s, const sluice::input_options& input, const Query& q,
                        std::stop_token stop, sluice::terminal_progress& progress) {
  return_freed_tables_to_the_os();
  std::unique_ptr<sluice::text_file> late_file;
  sluice::lambda_options opts = s.engine;
  if (!s.late_output.empty()) {
    late_file = std::make_unique<sluice::text_file>(s.late_output);
    opts.on_late = [&](const sluice::late_event& late) {
      std::string line(late.text);
      line += '\n';
      late_file->write(line);
    };
  }
  if (progress.enabled()) {
    opts.on_catch_up = [&progress](const sluice::run_progress& p) { progress.draw(p); };
  }
  // Rows are validated against the full schema at the edge (the log is the master dataset,
  // whatever the query); both layers decode the query's columns from the same bytes.
  sluice::lambda_engine engine(s.log_dir, sluice::csv_payloads(q.schema, csv_header), opts, q.flow);
  if (const auto& r = engine.status().recovery) {
    std::fprintf(stderr, "sales: log recovered: cut %llu bytes from %s at offset %llu (%s)\n",
                 static_cast<unsigned long long>(r->cut_bytes), r->segment.c_str(),
                 static_cast<unsigned long long>(r->first_lost_offset), r->reason.c_str());
  }
  std::fprintf(stderr, "sales: log %s holds %llu records; batch view built\n", s.log_dir.c_str(),
               static_cast<unsigned long long>(engine.status().log_head));
  engine.start_batch_layer();

  sluice::http_router router;
  router.add("/" + s.query, [&](const sluice::http_request& request) {
    return query_response(request, [&](const row_filter& filter) {
      const auto snap = engine.snapshot();
      std::string out = q.header;
      q.rows(snap.store, out, filter);
      return out;
    });
  });
  router.add("/status", [&](const sluice::http_request& /*request*/) {
    return sluice::http_response::json(status_json(s.query, engine.status(), engine.batch_error()));
  });
  add_metrics_route(router, s.query, [&] { return engine.status(); });
  router.add("/flow", sluice::flow_page(sluice::describe(q.flow), "sales " + s.query));
  const auto server = start_serving(s.serve, std::move(router));
  sluice::tcp_source source(sluice::csv_lines(csv_schema(), csv_header, input),
                            sluice::tcp_options{.listen = s.listen, .stop_after = s.connections});
  std::fprintf(stderr, "sales: listening on %s\n", source.local_endpoint().c_str());
  std::fflush(stderr);

  sluice::run_ingest(
      source, engine, [](const sale& row) { return row.ts; }, stop);
  if (!stop.stop_requested()) {
    std::fprintf(stderr, "sales: all %llu connections closed; serving until SIGINT/SIGTERM\n",
                 static_cast<unsigned long long>(s.connections));
    std::fflush(stderr);
    wait_until_stopped(stop);
  }
  server->stop();
  engine.stop_batch_layer();
  if (late_file) {
    late_file->close();
  }
  const auto st = engine.status();
  return fmt::format("{} rows ingested, {} bad records, {} late for the speed layer, log head {}, batch horizon {}",
                     st.ingested, st.bad_records, st.late, st.log_head, st.horizon_offset);
}

template <class Query>
std::string replay_mode(const lambda_settings& s, const Query& q, std::stop_token stop,
                        sluice::terminal_progress& progress) {
  auto payloads = sluice::csv_payloads(q.schema, csv_header);
  std::uint64_t from = 0;
  if (s.from_time) {
    from = sluice::first_offset_at_or_after(sluice::list_segments(s.log_dir), sluice::millis{*s.from_time});
  }
  if (s.serve.empty()) {
    sluice::kappa_status status;
    sluice::kappa_options shown;
    if (progress.enabled()) {
      shown.on_progress = [&progress](const sluice::run_progress& p) { progress.draw(p); };
      shown.progress_interval = s.engine.progress_interval;
    }
    const auto store = sluice::replay_to_head(q.flow, payloads, s.log_dir, from, &status, shown);
    std::string out = q.header;
    q.rows(store, out, row_filter{});
    std::fwrite(out.data(), 1, out.size(), stdout);
    return fmt::format("replayed {} records from offset {}", status.events, from);
  }
  sluice::kappa_options opts;
  opts.max_delay = s.engine.max_delay;
  sluice::kappa_view view(q.flow, payloads, s.log_dir, opts);
  view.replay(from);
  const auto replay_started = std::chrono::steady_clock::now();
  sluice::http_router router;
  router.add("/" + s.query, [&](const sluice::http_request& request) {
    auto snap = view.snapshot();
    if (!snap) {
      const auto st = view.status();
      throw sluice::http_error(
          503, fmt::format("replay in progress: offset {} of {}", st.replay_position, st.replay_target));
    }
    return query_response(request, [&](const row_filter& filter) {
      std::string out = q.header;
      q.rows(*snap, out, filter);
      return out;
    });
  });
  router.add("/status", [&](const sluice::http_request& /*request*/) {
    return sluice::http_response::json(status_json(s.query, view.status()));
  });
  add_metrics_route(router, s.query, [&] { return view.status(); });
  router.add("/flow", sluice::flow_page(sluice::describe(q.flow), "sales " + s.query));
  const auto server = start_serving(s.serve, std::move(router));
  // The first replay's progress, until it caught up and serves; drawn once start_serving printed
  // its address (a line printed while the progress line is drawn would land at its end).
  const sluice::progress_follower follower(
      progress,
      [&]() -> std::optional<sluice::run_progress> {
        const auto st = view.status();
        if (st.serving_generation > 0) {
          return std::nullopt;
        }
        auto p = sluice::replay_progress(st, from);
        p.records = p.done;
        p.elapsed = std::chrono::steady_clock::now() - replay_started;
        return p;
      },
      s.engine.progress_interval);
  wait_until_stopped(stop);
  server->stop();
  const auto st = view.status();
  return fmt::format("replayed and tailed {} records (generation {})", st.events, st.serving_generation);
}

}  // namespace sales
