// gen_access_log: writes a deterministic synthetic web-server access log as CSV: one day of
// requests to a small fleet of hosts, for the log_report example, its tests and benchmarks.
//
//   gen_access_log ROWS FILE [--seed S]
//
// Header: ts,host,method,path,status,bytes,latency_ms,user_agent. ts is ISO-8601 UTC with
// milliseconds (2024-03-01T00:00:00.123Z); rows are nearly in time order (a request is logged
// when it completes, so times jitter back up to 2 s). user_agent is always quoted and sometimes
// holds commas and "" escaped quotes. One host (web-03) is flaky: far more 5xx than the others.
// Paths are skewed: a few static files and API calls dominate the requests, a few large
// downloads dominate the bytes, and per-id API paths make the distinct-path counts large.
#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iterator>
#include <string>
#include <string_view>
#include <vector>

#include <fmt/core.h>

#include "../common/cli.hpp"
#include "../common/splitmix64.hpp"
#include "sluice/io/csv_text.hpp"
#include "sluice/io/iso8601.hpp"

namespace {

constexpr const char* usage =
    "usage: gen_access_log ROWS FILE [--seed S]\n"
    "  Writes ROWS synthetic access-log rows (CSV with header\n"
    "  ts,host,method,path,status,bytes,latency_ms,user_agent) spanning one day to FILE ('-' for stdout).\n"
    "  --seed S   random seed (default 42); the same seed gives the same file\n";

constexpr std::int64_t day_ms = 86'400'000;
constexpr std::int64_t max_jitter_ms = 2'000;

/// Signed helpers over the shared generator (the access log's arithmetic is all int64).
struct splitmix64 {
  cli::splitmix64 bits;
  std::int64_t below(std::int64_t n) { return static_cast<std::int64_t>(bits.below(static_cast<std::uint64_t>(n))); }
  std::int64_t between(std::int64_t lo, std::int64_t hi) { return lo + below(hi - lo + 1); }  // [lo, hi]
  bool chance(std::int64_t per_mille) { return below(1000) < per_mille; }
};

/// Appends ms since the epoch as 2024-03-01T12:34:56.789Z.
void append_iso(std::string& out, std::int64_t ms) {
  out += sluice::format_iso8601(sluice::millis{ms}, true);
}

constexpr const char* hosts[] = {"web-01", "web-02", "web-03", "web-04", "web-05", "web-06"};
constexpr std::int64_t flaky_host = 2;  // web-03

constexpr const char* user_agents[] = {
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36",
    ("Mozilla/5.0 (Macintosh; Intel Mac OS X 14_2) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.2 "
     "Safari/605.1.15"),  // one agent, split over two lines
    "Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_2 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148",
    "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
    "curl/8.4.0",
    "python-requests/2.31.0",
    "Go-http-client/1.1",
    "monitor \"healthcheck\", v2",
    "\"quoted\" agent, with a comma",
};

/// One request's path and the shape of its response.
struct route {
  std::string path;
  int kind;  // 0 static, 1 api, 2 download, 3 probe
};

route pick_route(splitmix64& rng) {
  const std::int64_t r = rng.below(1000);
  if (r < 300) {
    static constexpr const char* files[] = {
        "/", "/index.html", "/favicon.ico", "/static/app.js", "/static/app.css", "/static/logo.png", "/robots.txt"};
    return {files[rng.below(7)], 0};
  }
  if (r < 480) {
    return {"/api/v1/users/" + std::to_string(1 + rng.below(500)), 1};
  }
  if (r < 640) {
    return {"/api/v1/orders/" + std::to_string(1 + rng.below(2000)), 1};
  }
  if (r < 880) {
    static constexpr const char* calls[] = {"/api/v1/search", "/api/v1/login", "/api/v1/cart", "/api/v1/checkout"};
    return {calls[rng.below(4)], 1};
  }
  if (r < 900) {
    // Few requests, most of the bytes: a skewed choice among 20 releases.
    const std::int64_t a = rng.below(20);
    const std::int64_t b = rng.below(20);
    return {"/downloads/release-1." + std::to_string(a < b ? a : b) + ".tar.gz", 2};
  }
  return {r < 950 ? "/healthz" : "/metrics", 3};
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> positional;
  std::uint64_t seed = 42;
  cli::args args("gen_access_log", usage, argc, argv);
  while (args.next()) {
    const std::string_view a = args.current();
    if (a == "--seed") {
      seed = args.whole_number(args.value(), "--seed");
    } else {
      args.take_positional(positional, 2);
    }
  }
  const auto target = args.rows_and_file(positional);
  const std::uint64_t rows = target.rows;

  splitmix64 rng{seed};
  const std::int64_t start_ms = sluice::detail::days_from_civil(2024, 3, 1) * day_ms;
  // Spread the rows over one day: a mean gap of day/rows, at least 1 ms.
  const std::int64_t mean_gap = rows == 0 ? 1 : std::max<std::int64_t>(1, day_ms / static_cast<std::int64_t>(rows));
  std::string buf;
  buf.reserve(1U << 20U);
  buf += "ts,host,method,path,status,bytes,latency_ms,user_agent\n";
  std::int64_t clock = start_ms;
  for (std::uint64_t row = 0; row < rows; ++row) {
    clock += rng.below(2 * mean_gap + 1);
    const std::int64_t ts = std::max(start_ms, clock - rng.below(max_jitter_ms + 1));
    const std::int64_t host = rng.below(static_cast<std::int64_t>(std::size(hosts)));
    const route rt = pick_route(rng);

    const char* method = "GET";
    if (rt.kind == 1) {
      const std::int64_t m = rng.below(100);
      method = m < 70 ? "GET" : m < 88 ? "POST" : m < 96 ? "PUT" : "DELETE";
    } else if (rng.chance(20)) {
      method = "HEAD";
    }

    // Status: 5xx mostly on the flaky host; 404 for some per-id lookups; 304 for static files.
    int status = 200;
    const std::int64_t five_xx_per_mille = host == flaky_host ? 60 : 4;
    if (rng.chance(five_xx_per_mille)) {
      static constexpr int errors[] = {500, 502, 503, 504};
      status = errors[rng.below(4)];
    } else if (rt.kind == 1 && rng.chance(40)) {
      status = 404;
    } else if (rt.kind == 0 && rng.chance(250)) {
      status = 304;
    } else if (rt.kind == 1 && method[0] == 'P' && method[1] == 'O') {
      status = 201;
    }

    // Latency (integer ms): a per-kind base, a spread, and a heavy tail.
    static constexpr std::int64_t base_latency[] = {2, 25, 400, 1};
    std::int64_t latency = base_latency[rt.kind] + rng.below(2 * base_latency[rt.kind] + 3);
    if (rng.chance(15)) {
      latency += rng.between(200, 3000);
    }
    if (status == 504) {
      latency = 30'000 + rng.below(50);
    }

    std::int64_t bytes = 0;
    if (std::strcmp(method, "HEAD") == 0 || status == 304) {
      bytes = 0;
    } else if (status >= 400) {
      bytes = rng.between(150, 600);
    } else if (rt.kind == 0) {
      bytes = rng.between(2'000, 200'000);
    } else if (rt.kind == 1) {
      bytes = rng.between(200, 8'000);
    } else if (rt.kind == 2) {
      bytes = rng.between(5'000'000, 60'000'000);
    } else {
      bytes = rng.between(20, 4'000);
    }

    const char* agent =
        rt.kind == 3
            ? user_agents[8]
            : user_agents[static_cast<std::size_t>(rng.below(static_cast<std::int64_t>(std::size(user_agents))))];

    append_iso(buf, ts);
    fmt::format_to(std::back_inserter(buf), ",{},{},{},{},{},{},", hosts[host], method, rt.path, status, bytes,
                   latency);
    sluice::append_quoted_csv_field(buf, agent);
    buf += '\n';
    target.write_if_full(buf);
  }
  return target.finish(buf, "gen_access_log");
}
