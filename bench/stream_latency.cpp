// stream_latency: event-to-result latency of stream mode over loopback TCP, and the maximum
// sustained rate. A sender thread writes CSV rows whose event time is the wall clock at the
// moment of sending; sluice (in this process) windows them per region in tumbling windows and
// the sink notes when each window's rows come out.
//
//   stream_latency [--rate ROWS_PER_S] [--seconds S] [--window MS] [--max-delay MS] [--threads N]
//
// A window [start, end) can only fire once an event of time >= end + max_delay has arrived
// (the watermark is the latest event time minus the max delay); that event was sent at wall
// time >= end + max_delay. So latency = emit time - (end + max_delay) bounds from above the
// time from the socket write of the event that closed the window to its rows being emitted,
// with the watermark delay subtracted. Reported: p50, p99, p99.9 and max over all windows after
// the first second (warm-up). With --rate 0 the sender goes as fast as it can: that run gives the
// maximum sustained rate (rows/s), and latency under overload (queues full) for information.
#include <utility>  // before Asio: Boost 1.74's awaitable.hpp uses std::exchange

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <string>
#include <thread>
#include <vector>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/write.hpp>
#include <fmt/core.h>

#include "../examples/common/cli.hpp"
#include "latency_samples.hpp"
#include "sluice/io/stream_format.hpp"
#include "sluice/io/tcp_source.hpp"
#include "sluice/run/stream.hpp"
#include "sluice/sluice.hpp"

namespace {

constexpr const char* usage =
    "usage: stream_latency [--rate ROWS_PER_S] [--seconds S] [--window MS] [--max-delay MS] [--threads N]\n"
    "  --rate R       rows per second, paced in 1 ms ticks (default 1000000; 0: as fast as possible)\n"
    "  --seconds S    how long to send (default 10)\n"
    "  --window MS    tumbling window size (default 100)\n"
    "  --max-delay MS watermark delay (default 0)\n"
    "  --threads N    sluice workers (default 1)\n";

struct row {
  sluice::millis ts;
  std::string_view region;
  std::int64_t qty = 0;
};

std::int64_t wall_us() {
  return std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// Rows of one tick with a fixed-width 13-digit time at the start of each: patched before sending.
struct tick_buffer {
  std::string bytes;
  std::vector<std::size_t> ts_at;
  explicit tick_buffer(std::size_t rows) {
    for (std::size_t i = 0; i < rows; ++i) {
      ts_at.push_back(bytes.size());
      bytes += fmt::format("0000000000000,region-{:02},{}\n", i % 16, 1 + i % 5);
    }
  }
  void stamp(std::int64_t ms) {
    const std::string t = fmt::format("{:013}", ms);
    for (std::size_t at : ts_at) {
      bytes.replace(at, 13, t);
    }
  }
};

}  // namespace

int main(int argc, char** argv) {
  std::uint64_t rate = 1'000'000;
  std::uint64_t seconds = 10;
  std::uint64_t window_ms = 100;
  std::uint64_t delay_ms = 0;
  unsigned threads = 1;
  cli::args args("stream_latency", usage, argc, argv);
  while (args.next()) {
    const std::string_view a = args.current();
    if (a == "--rate") {
      rate = args.whole_number(args.value(), a);
    } else if (a == "--seconds") {
      seconds = args.whole_number(args.value(), a);
    } else if (a == "--window") {
      window_ms = std::max<std::uint64_t>(1, args.whole_number(args.value(), a));
    } else if (a == "--max-delay") {
      delay_ms = args.whole_number(args.value(), a);
    } else if (a == "--threads") {
      threads = args.threads();
    } else {
      args.unexpected();
    }
  }

  using sluice::column;
  auto schema = sluice::schema<row>(column("ts", &row::ts), column("region", &row::region), column("qty", &row::qty));
  const auto flow = sluice::flow<row>() | sluice::event_time(&row::ts) | sluice::key_by(&row::region) |
                    sluice::window(sluice::tumbling(std::chrono::milliseconds(window_ms))) |
                    sluice::aggregate(sluice::count{}, sluice::sum(&row::qty));
  sluice::tcp_source source(sluice::csv_lines(schema, "ts,region,qty"), sluice::tcp_options{.stop_after = 1});

  std::vector<std::int64_t> latency_us;
  std::int64_t warm_until_ms = 0;
  auto sink = [&](const auto& rows) {
    const std::int64_t now = wall_us();
    std::int64_t last_end = -1;
    for (const auto& r : rows.scan()) {  // one sample per window (its rows come out together)
      const std::int64_t end = r.key.window.end.count();
      if (end != last_end && end > warm_until_ms && end < sluice::millis::max().count() / 2) {
        latency_us.push_back(now - (end + static_cast<std::int64_t>(delay_ms)) * 1000);
      }
      last_end = end;
    }
  };

  std::uint64_t sent_rows = 0;
  double send_seconds = 0;
  std::jthread sender([&] {
    boost::asio::io_context io;
    boost::asio::ip::tcp::socket socket(io);
    socket.connect({boost::asio::ip::make_address("127.0.0.1"), source.port()});
    const bool paced = rate > 0;
    const std::size_t per_tick = paced ? std::max<std::uint64_t>(1, rate / 1000) : 1000;
    tick_buffer tick(per_tick);
    const auto start = std::chrono::steady_clock::now();
    warm_until_ms = wall_us() / 1000 + 1000;
    const auto stop_at = start + std::chrono::seconds(seconds);
    auto next = start;
    while (std::chrono::steady_clock::now() < stop_at) {
      if (paced) {
        std::this_thread::sleep_until(next);
        next += std::chrono::milliseconds(1);
      }
      tick.stamp(wall_us() / 1000);
      boost::asio::write(socket, boost::asio::buffer(tick.bytes));
      sent_rows += per_tick;
    }
    send_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    socket.close();
  });
  sluice::stream_options opts;
  opts.threads = threads;
  opts.max_delay = std::chrono::milliseconds(delay_ms);
  const auto stats = sluice::run_stream(source, flow, sink, opts);
  sender.join();

  const double p50 = bench::percentile_ms(latency_us, 0.50);
  const double p99 = bench::percentile_ms(latency_us, 0.99);
  const double p999 = bench::percentile_ms(latency_us, 0.999);
  const double worst = bench::max_ms(latency_us);
  fmt::print("rate_target,rows,send_s,rows_per_s,windows,p50_ms,p99_ms,p999_ms,max_ms\n");
  fmt::print("{},{},{:.3f},{:.0f},{},{:.3f},{:.3f},{:.3f},{:.3f}\n", rate, stats.events, send_seconds,
             static_cast<double>(stats.events) / stats.seconds, latency_us.size(), p50, p99, p999, worst);
  return stats.events == sent_rows ? 0 : 1;
}
