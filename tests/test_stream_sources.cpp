// The other unbounded byte sources through run_stream: UDP datagrams, a pipe (what stdin is),
// and a tailed file that is appended to and rotated. Each run is stopped once its live counters
// show every row arrived; the answer must then be exact. Also the other formats: length-prefixed
// binary frames, and lines_of (a parse function per line), cut at every offset, with an interval
// join over TCP of two event types in one line format against batch mode and a brute-force model.
#include <doctest/doctest.h>

#include <utility>  // before Asio

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <charconv>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <stop_token>
#include <string>
#include <thread>
#include <tuple>
#include <variant>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ip/udp.hpp>
#include <boost/asio/write.hpp>

#include "sluice/io/memory_source.hpp"
#include "sluice/io/reader_source.hpp"
#include "sluice/io/text_lines.hpp"
#include "sluice/io/stream_format.hpp"
#include "sluice/io/tcp_source.hpp"
#include "sluice/io/udp_source.hpp"
#include "sluice/run/batch.hpp"
#include "sluice/run/stream.hpp"
#include "sluice/sluice.hpp"
#include "join_fixtures.hpp"

namespace {

struct reading {
  std::string_view sensor;
  std::int64_t value = 0;
};

auto reading_schema() {
  return sluice::schema<reading>(sluice::column("sensor", &reading::sensor), sluice::column("value", &reading::value));
}
auto sum_by_sensor() {
  return sluice::flow<reading>() | sluice::key_by(&reading::sensor) |
         sluice::aggregate(sluice::count{}, sluice::sum(&reading::value));
}

/// Rows "s<i%7>,<i>" for i in [from, to), and their expected (count, sum) per sensor.
std::string rows(int from, int to, std::map<std::string, std::pair<std::int64_t, std::int64_t>>& expect) {
  std::string out;
  for (int i = from; i < to; ++i) {
    const std::string sensor = "s" + std::to_string(i % 7);
    out += sensor + "," + std::to_string(i) + "\n";
    expect[sensor].first += 1;
    expect[sensor].second += i;
  }
  return out;
}

/// Run `source` on a thread until the metrics count `events`, then stop; return the answer.
template <class Source>
std::map<std::string, std::pair<std::int64_t, std::int64_t>> run_until(Source& source, std::uint64_t events,
                                                                       const std::function<void()>& feed) {
  std::map<std::string, std::pair<std::int64_t, std::int64_t>> got;
  sluice::stream_metrics metrics;
  sluice::stream_options opts;
  opts.metrics = &metrics;
  std::stop_source stop;
  std::thread engine([&] {
    sluice::run_stream(source, sum_by_sensor(), [&](const auto& store) {
      for (const auto& row : store.scan()) {
        got[std::string(row.key)] = {std::get<0>(row.value), std::get<1>(row.value)};
      }
    }, opts, stop.get_token());
  });
  feed();
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (metrics.events.load() < events && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  stop.request_stop();
  engine.join();
  CHECK(metrics.events.load() == events);
  return got;
}

std::filesystem::path temp_path(const std::string& name) {
  return std::filesystem::temp_directory_path() / ("sluice-src-" + std::to_string(::getpid()) + "-" + name);
}

}  // namespace

TEST_CASE("udp_source: rows in datagrams (with and without a final newline) are all counted") {
  sluice::udp_source source(sluice::csv_lines(reading_schema(), ""), sluice::udp_options{});
  std::map<std::string, std::pair<std::int64_t, std::int64_t>> expect;
  std::vector<std::string> datagrams;
  for (int d = 0; d < 200; ++d) {
    std::string g = rows(d * 10, d * 10 + 10, expect);
    if (d % 2 == 1) {
      g.pop_back();  // the datagram's end ends its last record
    }
    datagrams.push_back(std::move(g));
  }
  const auto got = run_until(source, 2000, [&] {
    boost::asio::io_context io;
    boost::asio::ip::udp::socket socket(io, boost::asio::ip::udp::v4());
    const boost::asio::ip::udp::endpoint to(boost::asio::ip::make_address("127.0.0.1"), source.port());
    for (const auto& g : datagrams) {
      socket.send_to(boost::asio::buffer(g), to);
      std::this_thread::sleep_for(std::chrono::microseconds(200));  // UDP has no flow control
    }
  });
  CHECK(got == expect);
}

TEST_CASE("a pipe (as stdin): read to its end; a last row without newline counts") {
  int fds[2];
  REQUIRE(::pipe(fds) == 0);
  std::map<std::string, std::pair<std::int64_t, std::int64_t>> expect;
  std::string text = "sensor,value\n" + rows(0, 5000, expect);
  text.pop_back();
  std::thread writer([&] {
    std::size_t at = 0;
    while (at < text.size()) {
      const auto n = ::write(fds[1], text.data() + at, std::min<std::size_t>(777, text.size() - at));
      REQUIRE(n > 0);
      at += static_cast<std::size_t>(n);
    }
    ::close(fds[1]);
  });
  sluice::reader_source source(sluice::csv_lines(reading_schema(), "sensor,value"), sluice::fd_reader(fds[0], "pipe"),
                               "pipe");
  std::map<std::string, std::pair<std::int64_t, std::int64_t>> got;
  const auto stats = sluice::run_stream(source, sum_by_sensor(), [&](const auto& store) {
    for (const auto& row : store.scan()) {
      got[std::string(row.key)] = {std::get<0>(row.value), std::get<1>(row.value)};
    }
  });
  writer.join();
  ::close(fds[0]);
  CHECK(stats.events == 5000);
  CHECK(stats.bad_records == 0);
  CHECK(got == expect);
}

TEST_CASE("tail_source: follows appends and a rotation; a line cut at the old file's end is not glued on") {
  const auto path = temp_path("tail.csv");
  std::filesystem::remove(path);
  std::map<std::string, std::pair<std::int64_t, std::int64_t>> expect;
  std::vector<sluice::bad_record> bad;
  std::mutex bad_mutex;
  sluice::input_options input;
  input.dead_letters = [&](const sluice::bad_record& r) {
    std::lock_guard lock(bad_mutex);
    bad.push_back(r);
  };
  auto source = sluice::tail_source(sluice::csv_lines(reading_schema(), "sensor,value", input), path.string(),
                                    sluice::tail_options{std::chrono::milliseconds(2)});
  const std::string first = rows(0, 3000, expect);
  const std::string second = rows(3000, 6000, expect);
  expect["s1"].first += 1;  // the old file's unfinished last line "s1,12": the file ended it
  expect["s1"].second += 12;
  const auto got = run_until(source, 6001, [&] {
    {
      std::ofstream out(path, std::ios::binary);
      out << "sensor,value\n" << first.substr(0, first.size() / 2) << std::flush;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
      out << first.substr(first.size() / 2) << "s1,12" << std::flush;  // an unfinished last line
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    std::filesystem::rename(path, path.string() + ".1");
    std::ofstream out(path, std::ios::binary);
    out << "sensor,value\n" << second << std::flush;
  });
  CHECK(got == expect);
  CHECK(bad.empty());  // glued to the new file's header, it would have been a bad record
  std::filesystem::remove(path);
  std::filesystem::remove(path.string() + ".1");
}

namespace {
/// Sends streams[0] and streams[1] over two connections to `port`, in turns, in pieces of 1, 2,
/// ..., 97, 1, 2, ... bytes, so that records are split at every offset.
void send_in_pieces(std::uint16_t port, const std::string (&streams)[2]) {
  boost::asio::io_context io;
  std::vector<boost::asio::ip::tcp::socket> sockets;
  for (int c = 0; c < 2; ++c) {
    sockets.emplace_back(io).connect({boost::asio::ip::make_address("127.0.0.1"), port});
  }
  std::size_t at[2] = {0, 0};
  std::size_t piece = 1;
  while (at[0] < streams[0].size() || at[1] < streams[1].size()) {
    for (std::size_t c = 0; c < 2; ++c) {
      const std::size_t n = std::min(piece, streams[c].size() - at[c]);
      boost::asio::write(sockets[c], boost::asio::buffer(streams[c].data() + at[c], n));
      at[c] += n;
    }
    piece = piece % 97 + 1;
  }
}
}  // namespace

TEST_CASE("tcp_source with length-prefixed binary records: frames split anywhere decode exactly") {
  struct packet {
    std::int64_t sensor = 0;
    std::int64_t value = 0;
  };
  // Payload: two little-endian int64s; anything else is a bad record.
  auto decode = [](std::string_view payload, packet& out) -> const char* {
    if (payload.size() != 16) {
      return "a packet is 16 bytes";
    }
    std::memcpy(&out.sensor, payload.data(), 8);
    std::memcpy(&out.value, payload.data() + 8, 8);
    return nullptr;
  };
  std::vector<sluice::bad_record> bad;
  sluice::input_options input;
  input.dead_letters = [&](const sluice::bad_record& r) { bad.push_back(r); };
  sluice::tcp_source source(sluice::length_prefixed<packet, decltype(decode)>(decode, input),
                            sluice::tcp_options{.stop_after = 2});
  auto frame = [](const std::string& payload) {
    const auto n = static_cast<std::uint32_t>(payload.size());
    std::string out{static_cast<char>(n & 0xFFU), static_cast<char>((n >> 8U) & 0xFFU),
                    static_cast<char>((n >> 16U) & 0xFFU), static_cast<char>(n >> 24U)};
    return out + payload;
  };
  std::map<std::int64_t, std::int64_t> expect;
  std::string streams[2];
  for (std::int64_t i = 0; i < 4000; ++i) {
    std::string payload(16, '\0');
    const std::int64_t sensor = i % 5;
    std::memcpy(payload.data(), &sensor, 8);
    std::memcpy(payload.data() + 8, &i, 8);
    streams[i % 2] += frame(payload);
    expect[sensor] += i;
    if (i == 1000) {
      streams[0] += frame("short");  // a bad record; the stream stays in sync after it
    }
  }
  const auto flow = sluice::flow<packet>() | sluice::key_by(&packet::sensor) | sluice::aggregate(sluice::sum(&packet::value));
  std::map<std::int64_t, std::int64_t> got;
  std::thread clients([&] { send_in_pieces(source.port(), streams); });
  const auto stats = sluice::run_stream(source, flow, [&](const auto& store) {
    for (const auto& row : store.scan()) {
      got[row.key] = row.value;
    }
  });
  clients.join();
  CHECK(stats.events == 4000);
  CHECK(got == expect);
  REQUIRE(bad.size() == 1);
  CHECK(bad[0].line == 502);  // the 502nd frame of its connection
  CHECK(std::string(bad[0].reason) == "a packet is 16 bytes");
}

TEST_CASE("a sink that throws ends the run with its exception, without leaving a sender or the source stuck") {
  struct tick {
    sluice::millis ts;
    std::string_view sensor;
  };
  auto schema = sluice::schema<tick>(sluice::column("ts", &tick::ts), sluice::column("sensor", &tick::sensor));
  using namespace std::chrono_literals;
  const auto flow = sluice::flow<tick>() | sluice::event_time(&tick::ts) | sluice::key_by(&tick::sensor) |
                    sluice::window(sluice::tumbling(10ms)) | sluice::aggregate(sluice::count{});
  for (unsigned threads : {1U, 2U}) {
    CAPTURE(threads);
    sluice::tcp_source source(sluice::csv_lines(schema, ""), sluice::tcp_options{.stop_after = 2});
    std::thread clients([&] {
      boost::asio::io_context io;
      std::vector<boost::asio::ip::tcp::socket> sockets;
      for (int c = 0; c < 2; ++c) {
        sockets.emplace_back(io).connect({boost::asio::ip::make_address("127.0.0.1"), source.port()});
      }
      std::string rows;
      for (int t = 0; t < 100000; ++t) {
        rows += std::to_string(t) + ",s" + std::to_string(t % 3) + "\n";
      }
      boost::system::error_code ec;
      for (int round = 0; round < 100 && !ec; ++round) {  // ~130 MB: far more than the queues hold
        for (auto& s : sockets) {
          boost::asio::write(s, boost::asio::buffer(rows), ec);
        }
      }
      CHECK(ec);  // the server closed the connections once the run failed
    });
    sluice::stream_options opts;
    opts.threads = threads;
    CHECK_THROWS_WITH_AS(sluice::run_stream(source, flow, [](const auto& /*rows*/) { throw std::runtime_error("sink is down"); },
                                            opts),
                         "sink is down", std::runtime_error);
    clients.join();
  }
}

// ---- several event types in one text stream ----------------------------------------------------

namespace {

using join_test::either;
using join_test::left_ev;
using join_test::right_ev;

/// "L,time,key,id" or "R,time,key,id".
std::string line_of(const either& e) {
  return std::visit(
      [&](const auto& x) {
        const char* side = std::holds_alternative<left_ev>(e) ? "L" : "R";
        return std::string(side) + "," + std::to_string(x.t.count()) + "," + std::to_string(x.k) + "," +
               std::to_string(x.id) + "\n";
      },
      e);
}

const char* parse_either(std::string_view line, either& out) {
  if (line.size() < 2 || line[1] != ',' || (line[0] != 'L' && line[0] != 'R')) {
    return "expected L or R and a comma";
  }
  std::int64_t fields[3] = {};
  const char* p = line.data() + 2;
  const char* end = line.data() + line.size();
  for (int i = 0; i < 3; ++i) {
    const auto [next, ec] = std::from_chars(p, end, fields[i]);
    if (ec != std::errc{} || (i < 2 ? next == end || *next != ',' : next != end)) {
      return "expected three integers: time,key,id";
    }
    p = next + 1;
  }
  if (line[0] == 'L') {
    out = left_ev{sluice::millis{fields[0]}, fields[1], fields[2]};
  } else {
    out = right_ev{sluice::millis{fields[0]}, fields[1], fields[2]};
  }
  return nullptr;
}

/// What a format made of a text: records (offset, id) and bad records (line, offset, reason).
struct outcome {
  std::vector<std::pair<std::uint64_t, std::int64_t>> records;
  std::vector<std::tuple<std::uint64_t, std::uint64_t, std::string>> bad;
  bool operator==(const outcome&) const = default;
};

}  // namespace

TEST_CASE("lines_of: however the bytes are cut, the records and bad records are those of the whole text") {
  std::string text = "L,1,2,3\nR,4,5,6\r\n\nbad line\nL,7,8,9\n" + std::string(300, 'x') + "\nR,10,11,12\nL,13,1,14";
  sluice::input_options options;
  options.max_record_bytes = 100;
  const auto format = sluice::lines_of<either>(parse_either, options);
  auto run = [&](std::size_t piece, bool needs_final_newline) {
    outcome out;
    auto input = format.new_input("t");
    auto emit = [&](const either& e, std::string_view /*raw*/, std::uint64_t offset) {
      out.records.emplace_back(offset, std::visit([](const auto& x) { return x.id; }, e));
    };
    auto report = [&](const sluice::bad_record& b) {
      out.bad.emplace_back(b.line, b.offset, std::string(b.reason));
      return true;
    };
    for (std::size_t at = 0; at < text.size(); at += piece) {
      format.feed(input, std::string_view(text).substr(at, piece), emit, report);
    }
    format.close(input, needs_final_newline, emit, report);
    CHECK(input.at.offset == text.size());
    return out;
  };
  const outcome whole = run(text.size(), false);
  const std::vector<std::pair<std::uint64_t, std::int64_t>> records{{0, 3}, {8, 6}, {27, 9}, {336, 12}, {347, 14}};
  CHECK(whole.records == records);
  REQUIRE(whole.bad.size() == 2);
  CHECK(whole.bad[0] == std::tuple<std::uint64_t, std::uint64_t, std::string>{4, 18, "expected L or R and a comma"});
  CHECK(std::get<0>(whole.bad[1]) == 6);
  CHECK(std::get<1>(whole.bad[1]) == 35);
  CHECK(std::get<2>(whole.bad[1]) == "record exceeds the max record size (100 bytes)");
  for (std::size_t piece = 1; piece < 40; ++piece) {
    CAPTURE(piece);
    CHECK(run(piece, false) == whole);
  }
  // A socket: the last line has no newline, so a disconnect may have cut it.
  const outcome cut = run(7, true);
  CHECK(cut.records.size() == records.size() - 1);
  REQUIRE(cut.bad.size() == 3);
  CHECK(std::get<2>(cut.bad[2]) == "input closed in the middle of a record (no final newline)");
}

namespace {

/// Runs `flow` over TCP: `events` as lines over two connections (each in event order with the
/// input's disorder, so nothing is late: the watermark is the slower connection's), a bad line on
/// each, cut into pieces of every size. Checks the counts and the dead letters; returns the rows.
template <class Flow>
std::vector<join_test::pair_row> join_over_tcp(const Flow& flow, const std::vector<either>& events,
                                               std::int64_t delay) {
  std::string streams[2];
  for (std::size_t i = 0; i < events.size(); ++i) {
    streams[i % 2] += line_of(events[i]);
    if (i == 500 || i == 1001) {
      streams[i % 2] += "Q,1,2,3\n";
    }
  }
  std::vector<sluice::bad_record> bad;
  sluice::input_options input;
  input.dead_letters = [&](const sluice::bad_record& r) { bad.push_back(r); };
  sluice::tcp_source source(sluice::lines_of<either>(parse_either, input), sluice::tcp_options{.stop_after = 2});
  std::thread clients([&] { send_in_pieces(source.port(), streams); });
  std::vector<join_test::pair_row> rows;
  sluice::stream_options opts;
  opts.max_delay = std::chrono::milliseconds(delay);
  opts.expected_inputs = 2;
  const auto stats = sluice::run_stream(
      source, flow,
      [&rows](const std::vector<join_test::pair_row>& emitted) { rows.insert(rows.end(), emitted.begin(), emitted.end()); },
      opts);
  clients.join();
  CHECK(stats.events == events.size());
  CHECK(stats.late_events == 0);
  REQUIRE(bad.size() == 2);
  std::sort(bad.begin(), bad.end(), [](const auto& a, const auto& b) { return a.line < b.line; });
  CHECK(bad[0].line == 252);  // connection 0's line after its 251st event (i = 500)
  CHECK(bad[1].line == 502);  // connection 1's line after its 501st event (i = 1001)
  return join_test::sorted(rows);
}

}  // namespace

TEST_CASE("every join kind over TCP (two event types in one line format) equals batch mode") {
  constexpr std::int64_t delay = 40;
  for (std::uint64_t seed = 1; seed <= 2; ++seed) {
    CAPTURE(seed);
    const auto events = join_test::random_either(seed + 300, 3000, 9, delay);
    // The batch answers equal brute-force models (test_join.cpp); here the interval join's too.
    auto check = [&](const std::string& kind, const auto& flow) {
      CAPTURE(kind);
      const auto batch = join_test::sorted(sluice::run_batch(sluice::from_range(events), flow));
      REQUIRE(batch.size() > 100);
      CHECK(join_over_tcp(flow, events, delay) == batch);
      return batch;
    };
    using std::chrono::milliseconds;
    const auto interval = check("interval", join_test::keyed_either() | sluice::interval_join<left_ev, right_ev>(
                                                                             milliseconds(-10), milliseconds(25),
                                                                             join_test::pair_of));
    CHECK(interval == join_test::all_pairs(events, [](const left_ev& a, const right_ev& b) {
            return b.t.count() >= a.t.count() - 10 && b.t.count() <= a.t.count() + 25;
          }));
    const auto in_window = [](const left_ev& a, const right_ev& b, sluice::time_window w) {
      return join_test::pair_row{a.k, a.id, b.id, w.start.count()};
    };
    check("tumbling window", join_test::keyed_either() |
                                 sluice::window_join<left_ev, right_ev>(sluice::tumbling(milliseconds(50)), in_window));
    check("session window", join_test::keyed_either() |
                                sluice::window_join<left_ev, right_ev>(sluice::session(milliseconds(8)), in_window));
    check("inner, ttl", join_test::keyed_either() | sluice::inner_join<left_ev, right_ev>(join_test::pair_of,
                                                                                          milliseconds(30)));
  }
  // Of events with equal times, a temporal join takes them in arrival order (the latest version
  // wins; a version counts for a left of its time if it came first): over two connections that
  // order is the network's, so the times here never tie (time * 4096 + position).
  constexpr std::int64_t spread = 4096;
  for (std::uint64_t seed = 1; seed <= 2; ++seed) {
    CAPTURE(seed);
    auto events = join_test::random_either(seed + 310, 3000, 9, delay);
    for (std::size_t i = 0; i < events.size(); ++i) {
      std::visit([&](auto& x) { x.t = sluice::millis{x.t.count() * spread + static_cast<std::int64_t>(i)}; },
                 events[i]);
    }
    const auto flow = join_test::keyed_either() | sluice::temporal_join<left_ev, right_ev>(join_test::pair_of);
    const auto batch = join_test::sorted(sluice::run_batch(sluice::from_range(events), flow));
    REQUIRE(batch.size() > 100);
    CHECK(join_over_tcp(flow, events, (delay + 1) * spread) == batch);
  }
}
