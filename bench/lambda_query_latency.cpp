// lambda_query_latency: how long a query on the Lambda view takes while rows are being ingested,
// and the ingest rate kept meanwhile. One thread ingests generated sales rows without pause
// (batches of --batch rows through lambda_engine::ingest; the batch layer runs on its own thread
// and recomputes each sealed segment); another asks for the answer as fast as it can, or --rate
// times a second:
//
//   snapshot  engine.snapshot() (V_E (+) the speed layer's epochs >= E, open windows included)
//   http      GET /QUERY through sluice::http_server (the snapshot rendered as CSV) from a
//             blocking Beast client on one keep-alive connection
//   none      no queries: the ingest rate alone
//
//   lambda_query_latency [--seconds S] [--rate Q] [--query by-category|region-minute|all]
//                        [--mode none|snapshot|http|all] [--fsync POLICY] [--segment-bytes N]
//                        [--batch N] [--no-batch-layer]
//
// One run per query and mode, a table row each. Latency is from the call to the answer in hand
// (for http: the whole body read), over the queries started after a 0.5 s warm-up; ingest
// rows/s and its batches' p99 are over the same period. Logs go under the system temp directory
// and are removed after each run.
#include <utility>  // before Asio: Boost 1.74's awaitable.hpp uses std::exchange

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <iterator>
#include <memory>
#include <optional>
#include <stdexcept>
#include <stop_token>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <fmt/core.h>

#include "../examples/common/cli.hpp"
#include "lambda_fixtures.hpp"
#include "latency_samples.hpp"
#include "sales.hpp"
#include "sluice/io/log_source.hpp"
#include "sluice/lambda/lambda_engine.hpp"
#include "sluice/serve/http_client.hpp"
#include "sluice/serve/http_server.hpp"

namespace {

constexpr const char* usage =
    "usage: lambda_query_latency [--seconds S] [--rate Q] [--query by-category|region-minute|all]\n"
    "                            [--mode none|snapshot|http|all] [--fsync POLICY] [--segment-bytes N] [--batch N]\n"
    "                            [--no-batch-layer]\n"
    "  --seconds S        length of each run (default 4; the first 0.5 s are warm-up)\n"
    "  --rate Q           queries per second (default 0: as fast as possible)\n"
    "  --query Q          by-category, region-minute or all (default all)\n"
    "  --mode M           none (ingest only), snapshot, http or all (default all)\n"
    "  --fsync POLICY     always, interval:MS or never (default interval:100)\n"
    "  --segment-bytes N  seal a log segment (a batch-layer epoch) at N bytes (default 8 MiB)\n"
    "  --batch N          rows per ingest call (default 1000)\n"
    "  --no-batch-layer   do not start the batch layer (the speed layer keeps every epoch)\n";

using clock_type = std::chrono::steady_clock;

struct settings {
  std::chrono::milliseconds length{4000};
  std::uint64_t rate = 0;
  std::string fsync = "interval:100";
  std::uint64_t segment_bytes = std::uint64_t{8} << 20U;
  std::size_t batch = 1000;
  bool batch_layer = true;
};

struct run_result {
  std::uint64_t queries = 0;
  double p50 = 0, p99 = 0, p999 = 0, max = 0;  // query latency, ms
  double ingest_rows_per_s = 0;
  double ingest_batch_p99 = 0;  // ms per ingest call
  std::uint64_t batch_runs = 0;
  double last_batch_seconds = 0;
  std::uint64_t log_head = 0;
  std::uint64_t horizon_lag = 0;  // records the batch view does not cover yet, at the end
  std::size_t keys = 0;           // rows of the last answer
};

std::int64_t micros_since(clock_type::time_point t0) {
  return std::chrono::duration_cast<std::chrono::microseconds>(clock_type::now() - t0).count();
}

/// A sales answer as CSV: key (and window start), count, revenue.
template <class Store>
std::string answer_csv(const Store& store) {
  std::string out;
  for (const auto& row : store.scan()) {
    const auto& [count, revenue] = row.value;
    if constexpr (requires { row.key.window; }) {
      fmt::format_to(std::back_inserter(out), "{},{},", row.key.key, row.key.window.start.count());
    } else {
      fmt::format_to(std::back_inserter(out), "{},", row.key);
    }
    fmt::format_to(std::back_inserter(out), "{},{}\n", count, sales::format_cents(revenue));
  }
  return out;
}

template <class Flow, class Schema>
run_result measure(const settings& s, const std::string& query, const std::string& mode, const Flow& flow,
                   const Schema& schema, bench::sales_rows& rows) {
  const bench::scratch_dir dir("lambda_latency");
  sluice::lambda_options opts;
  opts.log.fsync = sluice::fsync_policy::parse(s.fsync);
  opts.log.segment_bytes = s.segment_bytes;
  opts.max_delay = std::chrono::milliseconds(200);  // the rows' own disorder: nothing is late
  sluice::lambda_engine engine(dir.path("log"), sluice::csv_payloads(schema, sales::csv_header), opts, flow);
  if (s.batch_layer) {
    engine.start_batch_layer();
  }

  std::unique_ptr<sluice::http_server> server;
  if (mode == "http") {
    sluice::http_router routes;
    routes.add("/" + query, [&engine](const sluice::http_request& /*request*/) {
      return sluice::http_response::csv(answer_csv(engine.snapshot().store));
    });
    server = std::make_unique<sluice::http_server>(std::move(routes));
  }

  const auto start = clock_type::now();
  const auto warm = start + std::chrono::milliseconds(500);
  const auto end = start + s.length;
  std::vector<std::int64_t> ingest_us;
  std::uint64_t ingested_after_warm_up = 0;
  clock_type::time_point ingest_stopped;
  std::exception_ptr ingest_error;
  std::jthread ingester([&](const std::stop_token& stop) {  // stopped (and joined) on any way out
    try {
      const auto input = engine.open_input();
      std::size_t at = 0;
      while (!stop.stop_requested()) {
        if (at + s.batch > rows.size()) {
          rows.shift(rows.span_ms());
          at = 0;
        }
        const auto t0 = clock_type::now();
        engine.ingest(input, rows.batch(at, s.batch));
        if (t0 >= warm) {
          ingest_us.push_back(micros_since(t0));
          ingested_after_warm_up += s.batch;
        }
        at += s.batch;
      }
    } catch (...) {
      ingest_error = std::current_exception();
    }
    ingest_stopped = clock_type::now();
  });

  std::vector<std::int64_t> query_us;
  std::size_t keys = 0;
  std::optional<sluice::http_client> client;
  if (server) {
    client.emplace(server->local_endpoint());
  }
  const auto period = s.rate == 0 ? clock_type::duration::zero()
                                  : std::chrono::duration_cast<clock_type::duration>(std::chrono::seconds(1)) /
                                        static_cast<std::int64_t>(s.rate);
  auto next = start;
  while (clock_type::now() < end) {
    if (mode == "none") {
      std::this_thread::sleep_until(end);
      break;
    }
    if (s.rate > 0) {
      next += period;
      std::this_thread::sleep_until(next);
    }
    const auto t0 = clock_type::now();
    if (client) {
      const std::string body = client->get("/" + query);
      keys = static_cast<std::size_t>(std::count(body.begin(), body.end(), '\n'));
    } else {
      keys = engine.snapshot().store.size();
    }
    if (t0 >= warm) {
      query_us.push_back(micros_since(t0));
    }
  }
  ingester.request_stop();
  ingester.join();
  if (ingest_error) {
    std::rethrow_exception(ingest_error);
  }
  server.reset();
  const auto status = engine.status();
  engine.stop_batch_layer();

  run_result r;
  r.queries = query_us.size();
  r.p50 = bench::percentile_ms(query_us, 0.50);
  r.p99 = bench::percentile_ms(query_us, 0.99);
  r.p999 = bench::percentile_ms(query_us, 0.999);
  r.max = bench::max_ms(query_us);
  r.ingest_rows_per_s =
      static_cast<double>(ingested_after_warm_up) / std::chrono::duration<double>(ingest_stopped - warm).count();
  r.ingest_batch_p99 = bench::percentile_ms(ingest_us, 0.99);
  r.batch_runs = status.batch_runs;
  r.last_batch_seconds = status.last_batch_seconds;
  r.log_head = status.log_head;
  r.horizon_lag = status.log_head - status.horizon_offset;
  r.keys = keys;
  return r;
}

/// Every (query, mode) run, a table row each.
void run_all(const settings& s, const std::vector<std::string>& queries, const std::vector<std::string>& modes) {
  bench::sales_rows rows(1'000'000);  // cycled, each round later in event time
  fmt::print("fsync {}, segments of {} bytes, ingest batches of {} rows, batch layer {}, {} s a run, queries {}\n",
             s.fsync, s.segment_bytes, s.batch, s.batch_layer ? "running" : "off", s.length.count() / 1000,
             s.rate == 0 ? std::string("as fast as possible") : fmt::format("at {}/s", s.rate));
  fmt::print(
      "| query | mode | queries | p50 ms | p99 ms | p99.9 ms | max ms | answer rows | ingest rows/s | "
      "ingest batch p99 ms | batch runs | last batch s | log head | horizon lag |\n");
  fmt::print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
  for (const auto& q : queries) {
    for (const auto& m : modes) {
      const run_result r = q == "by-category"
                               ? measure(s, q, m, sales::by_category(), sales::by_category_schema(), rows)
                               : measure(s, q, m, sales::region_minute(), sales::region_minute_schema(), rows);
      fmt::print(
          "| {} | {} | {} | {:.3f} | {:.3f} | {:.3f} | {:.3f} | {} | {:.0f} | {:.3f} | {} | {:.3f} | {} | {} |\n", q, m,
          r.queries, r.p50, r.p99, r.p999, r.max, r.keys, r.ingest_rows_per_s, r.ingest_batch_p99, r.batch_runs,
          r.last_batch_seconds, r.log_head, r.horizon_lag);
      std::fflush(stdout);
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  settings s;
  std::string query = "all";
  std::string mode = "all";
  cli::args args("lambda_query_latency", usage, argc, argv);
  while (args.next()) {
    const std::string_view a = args.current();
    if (a == "--seconds") {
      s.length = std::chrono::seconds(std::max<std::uint64_t>(1, args.whole_number(args.value(), a)));
    } else if (a == "--rate") {
      s.rate = args.whole_number(args.value(), a);
    } else if (a == "--query") {
      query = args.value();
    } else if (a == "--mode") {
      mode = args.value();
    } else if (a == "--fsync") {
      s.fsync = args.value();
      try {
        sluice::fsync_policy::parse(s.fsync);
      } catch (const std::invalid_argument& e) {
        args.fail(std::string("--fsync: ") + e.what());
      }
    } else if (a == "--segment-bytes") {
      s.segment_bytes = std::max<std::uint64_t>(1, args.whole_number(args.value(), a));
    } else if (a == "--no-batch-layer") {
      s.batch_layer = false;
    } else if (a == "--batch") {
      s.batch = std::max<std::uint64_t>(1, args.whole_number(args.value(), a));
    } else {
      args.unexpected();
    }
  }
  const std::vector<std::string> queries =
      query == "all" ? std::vector<std::string>{"by-category", "region-minute"} : std::vector<std::string>{query};
  const std::vector<std::string> modes =
      mode == "all" ? std::vector<std::string>{"none", "snapshot", "http"} : std::vector<std::string>{mode};
  for (const auto& q : queries) {
    if (q != "by-category" && q != "region-minute") {
      args.fail("unknown query '" + q + "'");
    }
  }
  for (const auto& m : modes) {
    if (m != "none" && m != "snapshot" && m != "http") {
      args.fail("unknown mode '" + m + "'");
    }
  }

  try {
    run_all(s, queries, modes);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "lambda_query_latency: %s\n", e.what());
    return 1;
  }
  return 0;
}
