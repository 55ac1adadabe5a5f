// Stream mode over real loopback TCP: clients on their own threads write sales CSV through plain
// POSIX sockets, in random pieces that cut records anywhere, to a tcp_source feeding run_stream.
// The properties: without late events the stream's answer is the batch answer, exactly; late
// events, bad records and cut-off records are all accounted for (none is lost silently); a slow
// sink stops the reading (memory is bounded by the queues, the sender blocks); a stop request
// drains what was received.
#include <doctest/doctest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <utility>  // before Asio: Boost 1.74's awaitable.hpp uses std::exchange

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <set>
#include <stdexcept>
#include <stop_token>
#include <string>
#include <string_view>
#include <thread>
#include <tuple>
#include <vector>

#include "random_sales.hpp"
#include "sales.hpp"
#include "sluice/io/memory_source.hpp"
#include "sluice/io/stream_format.hpp"
#include "sluice/io/tcp_source.hpp"
#include "sluice/run/batch.hpp"
#include "sluice/run/stream.hpp"

using namespace std::chrono_literals;

namespace {

using test_data::owned_sale;
using test_data::random_sales;

/// random_sales puts events up to 90 s out of order: the max delay under which none is late.
constexpr std::chrono::milliseconds fixture_disorder{90'000};

/// How long any wait in this file may take before the test gives up and fails (instead of hanging).
constexpr auto give_up_after = 60s;

// ---- answers -------------------------------------------------------------------------------------

/// A (count, revenue) answer per key; windowed keys read "region@start-end".
using answer = std::map<std::string, std::pair<std::int64_t, std::int64_t>>;

std::string key_text(std::string_view key) {
  return std::string(key);
}
template <class K>
std::string key_text(const sluice::windowed_key<K, sluice::time_window>& key) {
  return key_text(key.key) + "@" + std::to_string(key.window.start.count()) + "-" +
         std::to_string(key.window.end.count());
}

/// Adds the rows of `store` to `into`; a key already there goes to `emitted_twice` (if given).
template <class Store>
void add_rows(const Store& store, answer& into, std::vector<std::string>* emitted_twice) {
  for (const auto& row : store.scan()) {
    std::string key = key_text(row.key);
    const auto [slot, fresh] = into.try_emplace(key);
    if (!fresh && emitted_twice != nullptr) {
      emitted_twice->push_back(std::move(key));
    }
    slot->second.first += std::get<0>(row.value);
    slot->second.second += std::get<1>(row.value);
  }
}

answer plus(answer a, const answer& b) {
  for (const auto& [key, value] : b) {
    a[key].first += value.first;
    a[key].second += value.second;
  }
  return a;
}

std::int64_t total_count(const answer& a) {
  std::int64_t n = 0;
  for (const auto& [key, value] : a) {
    n += value.first;
  }
  return n;
}

/// "" if `got` is `want`; otherwise how many keys differ and the first of them, briefly: a
/// failure message that names the window or category that went wrong.
std::string difference(const answer& got, const answer& want) {
  std::size_t differing = 0;
  std::string first;
  const auto note = [&](const std::string& key, const std::string& what) {
    if (differing++ == 0) {
      first = key + ": " + what;
    }
  };
  const auto text = [](const std::pair<std::int64_t, std::int64_t>& v) {
    return "(" + std::to_string(v.first) + ", " + std::to_string(v.second) + ")";
  };
  for (const auto& [key, value] : want) {
    const auto it = got.find(key);
    if (it == got.end()) {
      note(key, "missing, want " + text(value));
    } else if (it->second != value) {
      note(key, "got " + text(it->second) + ", want " + text(value));
    }
  }
  for (const auto& [key, value] : got) {
    if (want.count(key) == 0) {
      note(key, "unexpected " + text(value));
    }
  }
  return differing == 0 ? ""
                        : std::to_string(differing) + " of " + std::to_string(want.size()) +
                              " keys differ (count, revenue); first " + first;
}

/// The batch answer of `flow` over `rows` (from memory, on two threads).
template <class Flow>
answer batch_answer(const std::vector<owned_sale>& rows, const Flow& flow) {
  std::vector<sales::sale> events;
  events.reserve(rows.size());
  for (const auto& r : rows) {
    events.push_back(
        {sluice::millis{r.ts}, r.order_id, r.user_id, r.region, r.category, r.product, r.qty, r.price_cents});
  }
  const auto store =
      sluice::run_batch(sluice::from_range(events), flow, sluice::batch_options{.threads = 2, .min_chunk_units = 1});
  answer out;
  add_rows(store, out, nullptr);
  return out;
}

/// The sink of a stream run: every row emitted, and the keys emitted more than once (with no
/// allowed lateness a window must be emitted exactly once).
struct collector {
  std::mutex mutex;
  answer rows;
  std::vector<std::string> emitted_twice;

  template <class Store>
  void operator()(const Store& store) {
    const std::lock_guard lock(mutex);
    add_rows(store, rows, &emitted_twice);
  }
};

// ---- CSV text --------------------------------------------------------------------------------------

/// The data lines of `rows` as sales CSV, each with its line ending (some CRLF, some quoted
/// categories when `vary_syntax`).
std::vector<std::string> data_lines(const std::vector<owned_sale>& rows, bool vary_syntax, std::uint64_t seed) {
  const std::string csv = test_data::to_csv(rows, vary_syntax, seed);
  std::vector<std::string> lines;
  std::size_t start = csv.find('\n') + 1;  // past the header
  while (start < csv.size()) {
    const std::size_t nl = csv.find('\n', start);
    lines.push_back(csv.substr(start, nl + 1 - start));
    start = nl + 1;
  }
  return lines;
}

std::string header_line() {
  return std::string(sales::csv_header) + "\n";
}

/// A line without its line ending.
std::string chomp(std::string_view s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r')) {
    s.remove_suffix(1);
  }
  return std::string(s);
}

/// The lines over k connections: line j to connection j % k (interleaved), or k contiguous runs.
/// Some connections (chosen by `seed`) start with the header line.
std::vector<std::string> distribute(const std::vector<std::string>& lines, std::size_t k, bool interleaved,
                                    std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<std::string> payloads(k);
  for (auto& p : payloads) {
    if (rng() % 2 == 0) {
      p = header_line();
    }
  }
  for (std::size_t j = 0; j < lines.size(); ++j) {
    payloads[interleaved ? j % k : j * k / lines.size()] += lines[j];
  }
  return payloads;
}

// ---- what a run reported ------------------------------------------------------------------------

/// A bad_record, copied (its views die with the dead-letter call).
struct dead_letter {
  std::string source;
  std::uint64_t line = 0;
  std::uint64_t offset = 0;
  std::string reason;
  std::string text;
};

struct dead_letter_log {
  std::mutex mutex;
  std::vector<dead_letter> records;

  sluice::dead_letter_sink sink() {
    return [this](const sluice::bad_record& r) {
      const std::lock_guard lock(mutex);
      records.push_back({std::string(r.source), r.line, r.offset, std::string(r.reason), std::string(r.text)});
    };
  }
};

/// What on_late reported, copied (the late_event's views die with the call).
struct late_record {
  std::string source;
  std::uint64_t offset = 0;
  std::int64_t event_time = 0;
  std::string text;
};

struct late_log {
  std::mutex mutex;
  std::vector<late_record> records;

  sluice::late_sink sink() {
    return [this](const sluice::late_event& e) {
      const std::lock_guard lock(mutex);
      records.push_back({std::string(e.source), e.offset, e.event_time.count(), chomp(e.text)});
    };
  }
};

// ---- clients ---------------------------------------------------------------------------------------

/// A blocking TCP client of 127.0.0.1:port.
class client {
 public:
  explicit client(std::uint16_t port) : fd_(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) {
    if (fd_ < 0) {
      throw std::runtime_error(std::string("socket: ") + std::strerror(errno));
    }
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd_, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0) {
      const int err = errno;
      ::close(fd_);
      throw std::runtime_error("connect to port " + std::to_string(port) + ": " + std::strerror(err));
    }
    const int one = 1;
    ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);  // small writes go out as they are
  }
  client(const client&) = delete;
  client& operator=(const client&) = delete;
  ~client() { close(); }

  /// Writes all of `bytes`; false if the server closed or reset the connection first.
  bool send(std::string_view bytes) {
    while (!bytes.empty()) {
      const ssize_t n = ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
      if (n < 0 && errno == EINTR) {
        continue;
      }
      if (n <= 0) {
        return false;
      }
      bytes.remove_prefix(static_cast<std::size_t>(n));
    }
    return true;
  }
  void must_send(std::string_view bytes) {
    if (!send(bytes)) {
      throw std::runtime_error(std::string("send: ") + std::strerror(errno));
    }
  }

  /// Writes `bytes` in random pieces, from single bytes to a few KiB: records get cut anywhere.
  void send_in_pieces(std::string_view bytes, std::mt19937_64& rng) {
    while (!bytes.empty()) {
      const std::size_t piece = std::min(bytes.size(), next_piece(rng));
      must_send(bytes.substr(0, piece));
      bytes.remove_prefix(piece);
    }
  }
  static std::size_t next_piece(std::mt19937_64& rng) { return rng() % 4 == 0 ? 1 + rng() % 16 : 1 + rng() % 4096; }

  /// Blocks until the server closes the connection (reading and dropping whatever it sends).
  void wait_for_server_close() const {
    char buf[256];
    while (true) {
      const ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
      if (n == 0 || (n < 0 && errno != EINTR)) {
        return;
      }
    }
  }

  /// The name tcp_source gives this connection: "tcp 127.0.0.1:<our port>".
  [[nodiscard]] std::string input_name() const {
    sockaddr_in addr{};
    socklen_t len = sizeof addr;
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    return "tcp 127.0.0.1:" + std::to_string(ntohs(addr.sin_port));
  }

  [[nodiscard]] int fd() const { return fd_; }

  void close() {
    if (fd_ >= 0) {
      ::close(fd_);
      fd_ = -1;
    }
  }

 private:
  int fd_;
};

/// Sends payloads[c] over connection c, all connections open at once: `client_threads` threads
/// each connect their share of the connections first, then write random pieces to random ones of
/// them until all is sent, closing each connection when its payload is done.
void send_concurrently(std::uint16_t port, const std::vector<std::string>& payloads, std::uint64_t seed,
                       std::size_t client_threads) {
  std::vector<std::future<void>> senders;
  for (std::size_t t = 0; t < client_threads; ++t) {
    senders.push_back(std::async(std::launch::async, [&payloads, port, seed, t, client_threads] {
      std::mt19937_64 rng(seed * 1000 + t);
      std::vector<std::unique_ptr<client>> conns;
      std::vector<std::string_view> left;
      for (std::size_t c = t; c < payloads.size(); c += client_threads) {
        conns.push_back(std::make_unique<client>(port));
        left.emplace_back(payloads[c]);
      }
      std::size_t open = conns.size();
      for (std::size_t i = 0; i < conns.size(); ++i) {
        if (left[i].empty()) {
          conns[i]->close();  // a connection that sends nothing at all
          --open;
        }
      }
      while (open > 0) {
        const std::size_t i = rng() % conns.size();
        if (left[i].empty()) {
          continue;
        }
        const std::size_t piece = std::min(left[i].size(), client::next_piece(rng));
        conns[i]->must_send(left[i].substr(0, piece));
        left[i].remove_prefix(piece);
        if (left[i].empty()) {
          conns[i]->close();
          --open;
        }
      }
    }));
  }
  for (auto& s : senders) {
    s.get();  // rethrows a client's failure
  }
}

// ---- waiting without hanging -------------------------------------------------------------------------

/// Requests stop on `target` if `limit` passes first: a run that never ends then returns (and the
/// test fails on its answer) instead of hanging the test binary.
class watchdog {
 public:
  explicit watchdog(const std::stop_source& target, std::chrono::seconds limit = give_up_after)
      : timer_([target, limit](const std::stop_token& done) mutable {
          std::mutex m;
          std::condition_variable_any cv;
          std::unique_lock lock(m);
          if (!cv.wait_for(lock, done, limit, [] { return false; })) {
            target.request_stop();
          }
        }) {}

 private:
  std::jthread timer_;
};

/// A run that should end by itself (its scripted connections done) must not need the watchdog.
void check_ended_by_itself(const std::stop_source& watched) {
  CHECK_MESSAGE(!watched.stop_requested(), "the run did not end by itself: the watchdog stopped it after ",
                give_up_after.count(), " s");
}

/// Polls `ready` until it is true (returns true) or give_up_after passes (returns false).
template <class Ready>
bool eventually(Ready&& ready) {
  const auto deadline = std::chrono::steady_clock::now() + give_up_after;
  while (!ready()) {
    if (std::chrono::steady_clock::now() > deadline) {
      return false;
    }
    std::this_thread::sleep_for(1ms);
  }
  return true;
}

// ---- one scripted run ----------------------------------------------------------------------------------

struct tcp_run {
  answer rows;
  std::vector<std::string> emitted_twice;
  sluice::stream_stats stats;
};

/// Runs `flow` in stream mode over a tcp_source that ends after payloads.size() connections,
/// while clients send payloads[c] over connection c.
template <class Flow>
tcp_run stream_over_tcp(const Flow& flow, const std::vector<std::string>& payloads, sluice::stream_options opts,
                        std::uint64_t seed, sluice::input_options input = {}, std::size_t client_threads = 0) {
  sluice::tcp_source source(sluice::csv_lines(sales::csv_schema(), sales::csv_header, std::move(input)),
                            sluice::tcp_options{.stop_after = payloads.size()});
  const std::uint16_t port = source.port();
  collector sink;
  std::stop_source stop;
  const watchdog guard(stop);
  auto senders = std::async(std::launch::async, [&] {
    send_concurrently(port, payloads, seed,
                      client_threads != 0 ? client_threads : std::min<std::size_t>(payloads.size(), 4));
  });
  tcp_run out;
  out.stats = sluice::run_stream(source, flow, sink, opts, stop.get_token());
  senders.get();
  check_ended_by_itself(stop);
  out.rows = std::move(sink.rows);
  out.emitted_twice = std::move(sink.emitted_twice);
  return out;
}

}  // namespace

// ---- 1. mode equivalence ---------------------------------------------------------------------------------

TEST_CASE("stream over TCP equals batch whatever the connections, the split of rows, the write sizes and the workers") {
  std::size_t config = 0;
  for (const std::uint64_t seed : {11U, 12U, 13U}) {
    const auto rows = random_sales(seed, 1000 + seed * 37);
    const auto lines = data_lines(rows, true, seed);
    const answer by_minute = batch_answer(rows, sales::region_minute());
    const answer by_category = batch_answer(rows, sales::by_category());
    REQUIRE(total_count(by_minute) == static_cast<std::int64_t>(rows.size()));
    for (const std::size_t k : {1U, 2U, 3U, 5U}) {
      for (const bool interleaved : {true, false}) {
        const unsigned threads = 1 + config++ % 3;
        const auto payloads = distribute(lines, k, interleaved, seed * 10 + k);
        CAPTURE(seed);
        CAPTURE(k);
        CAPTURE(interleaved);
        CAPTURE(threads);
        const sluice::stream_options opts{.threads = threads, .max_delay = fixture_disorder, .expected_inputs = k};

        const tcp_run minute = stream_over_tcp(sales::region_minute(), payloads, opts, seed * 100 + k);
        CHECK(minute.stats.late_events == 0);
        CHECK(minute.stats.bad_records == 0);
        CHECK(minute.stats.events == rows.size());
        CHECK(minute.stats.inputs == k);
        CHECK(minute.emitted_twice.empty());
        CHECK(difference(minute.rows, by_minute) == "");

        const tcp_run category = stream_over_tcp(sales::by_category(), payloads, opts, seed * 100 + k + 50);
        CHECK(category.stats.late_events == 0);
        CHECK(category.stats.bad_records == 0);
        CHECK(category.stats.events == rows.size());
        CHECK(category.emitted_twice.empty());
        CHECK(difference(category.rows, by_category) == "");
      }
    }
  }
}

// ---- 2. late events ----------------------------------------------------------------------------------------

namespace {

/// Copies of some rows an hour before the first event: far beyond the max delay.
std::vector<owned_sale> far_past_rows(const std::vector<owned_sale>& rows, std::size_t n) {
  std::vector<owned_sale> out;
  for (std::size_t i = 0; i < n; ++i) {
    owned_sale r = rows[i * 7 % rows.size()];
    r.ts = rows.front().ts - 3'600'000 - static_cast<std::int64_t>(i) * 7'001;
    r.order_id = 10'000'000 + static_cast<std::int64_t>(i);  // every line is unique
    out.push_back(r);
  }
  return out;
}

}  // namespace

TEST_CASE("events beyond the max delay go to on_late with their text and position; stream + late == batch") {
  const auto normal = random_sales(21, 2000);
  const auto normal_lines = data_lines(normal, true, 21);
  const auto past = far_past_rows(normal, 40);
  const auto past_lines = data_lines(past, false, 0);
  std::vector<owned_sale> all = normal;
  all.insert(all.end(), past.begin(), past.end());

  for (const unsigned threads : {1U, 2U}) {
    CAPTURE(threads);
    // One connection: the first half, then (once the watermark has passed the far-past windows)
    // the second half with the far-past rows mixed in at random places. Those must all be late.
    std::mt19937_64 rng(threads);
    std::vector<std::string> first_half{header_line()};
    std::vector<std::string> second_half;
    std::vector<bool> is_past_line;  // per line of the second half
    for (std::size_t j = 0; j < normal_lines.size() / 2; ++j) {
      first_half.push_back(normal_lines[j]);
    }
    std::size_t next_past = 0;
    for (std::size_t j = normal_lines.size() / 2; j < normal_lines.size(); ++j) {
      if (next_past < past_lines.size() && rng() % 20 == 0) {
        second_half.push_back(past_lines[next_past++]);
        is_past_line.push_back(true);
      }
      second_half.push_back(normal_lines[j]);
      is_past_line.push_back(false);
    }
    while (next_past < past_lines.size()) {
      second_half.push_back(past_lines[next_past++]);
      is_past_line.push_back(true);
    }
    // Where each far-past line starts on the connection.
    std::vector<late_record> expected;
    std::uint64_t offset = 0;
    for (const auto& l : first_half) {
      offset += l.size();
    }
    std::string first_text;
    std::string second_text;
    for (const auto& l : first_half) {
      first_text += l;
    }
    for (std::size_t j = 0; j < second_half.size(); ++j) {
      if (is_past_line[j]) {
        expected.push_back({"", offset, 0, chomp(second_half[j])});
      }
      second_text += second_half[j];
      offset += second_half[j].size();
    }
    std::int64_t past_windows_end = 0;
    for (const auto& r : past) {
      past_windows_end = std::max(past_windows_end, r.ts - r.ts % 60'000 + 60'000);
    }
    for (std::size_t i = 0; i < past.size(); ++i) {
      // expected[] is in send order, which is past[] order
      expected[i].event_time = past[i].ts;
    }

    sluice::tcp_source source(sluice::csv_lines(sales::csv_schema(), sales::csv_header),
                              sluice::tcp_options{.stop_after = 1});
    const std::uint16_t port = source.port();
    sluice::stream_metrics metrics;
    late_log late;
    collector sink;
    std::stop_source stop;
    const watchdog guard(stop);
    std::string name;
    auto sender = std::async(std::launch::async, [&] {
      std::mt19937_64 pieces(99 + threads);
      client c(port);
      name = c.input_name();
      c.send_in_pieces(first_text, pieces);
      // Not a timing assumption: wait for the stream's own watermark to pass the far-past windows.
      if (!eventually([&] { return metrics.watermark.load() >= past_windows_end; })) {
        throw std::runtime_error("the watermark never passed the far-past windows");
      }
      c.send_in_pieces(second_text, pieces);
    });
    sluice::stream_options opts{.threads = threads, .max_delay = fixture_disorder, .expected_inputs = 1};
    opts.on_late = late.sink();
    opts.metrics = &metrics;
    const sluice::stream_stats stats = sluice::run_stream(source, sales::region_minute(), sink, opts, stop.get_token());
    sender.get();
    check_ended_by_itself(stop);

    CHECK(stats.late_events == past.size());
    CHECK(metrics.late_events.load() == past.size());
    CHECK(stats.events == all.size());
    CHECK(stats.bad_records == 0);
    CHECK(sink.emitted_twice.empty());
    REQUIRE(late.records.size() == expected.size());
    std::size_t wrong_position = 0;
    std::string first_wrong;
    for (std::size_t i = 0; i < expected.size(); ++i) {
      CAPTURE(i);
      const late_record& got = late.records[i];
      CHECK(got.source == name);
      CHECK(got.text == expected[i].text);
      CHECK(got.event_time == expected[i].event_time);
      if (got.offset != expected[i].offset && wrong_position++ == 0) {
        first_wrong =
            "byte " + std::to_string(got.offset) + " for the record at byte " + std::to_string(expected[i].offset);
      }
    }
    CHECK_MESSAGE(wrong_position == 0, wrong_position, " of ", expected.size(),
                  " late events carry another offset than their record's; the first: ", first_wrong);
    CHECK(difference(sink.rows, batch_answer(normal, sales::region_minute())) == "");
    CHECK(difference(plus(sink.rows, batch_answer(past, sales::region_minute())),
                     batch_answer(all, sales::region_minute())) == "");
  }
}

TEST_CASE("whichever far-past events turn out late, only they are, each reported once, and stream + late == batch") {
  // No synchronisation with the stream here: how many far-past rows are late depends on when
  // the windows fire, but the accounting must balance every time.
  for (const std::uint64_t seed : {31U, 32U, 33U}) {
    CAPTURE(seed);
    const auto normal = random_sales(seed, 6000);
    const auto past = far_past_rows(normal, 60);
    // The far-past rows at random places, in order.
    std::mt19937_64 rng(seed);
    std::vector<bool> is_past(normal.size() + past.size(), false);
    for (std::size_t placed = 0; placed < past.size();) {
      auto slot = is_past.begin() + static_cast<std::ptrdiff_t>(rng() % is_past.size());
      if (!*slot) {
        *slot = true;
        ++placed;
      }
    }
    std::vector<owned_sale> all;
    for (std::size_t j = 0, n = 0, p = 0; j < is_past.size(); ++j) {
      all.push_back(is_past[j] ? past[p++] : normal[n++]);
    }
    const auto lines = data_lines(all, true, seed);
    std::map<std::string, std::size_t> row_of_line;
    std::set<std::string> past_texts;
    for (std::size_t j = 0; j < lines.size(); ++j) {
      row_of_line[chomp(lines[j])] = j;
      if (is_past[j]) {
        past_texts.insert(chomp(lines[j]));
      }
    }

    late_log late;
    sluice::stream_options opts{.threads = 2, .max_delay = fixture_disorder, .expected_inputs = 3};
    opts.on_late = late.sink();
    const tcp_run run = stream_over_tcp(sales::region_minute(), distribute(lines, 3, true, seed), opts, seed);

    CHECK(run.stats.late_events == late.records.size());
    CHECK(run.stats.events == all.size());
    CHECK(run.stats.bad_records == 0);
    CHECK(run.emitted_twice.empty());
    std::vector<owned_sale> late_rows;
    std::set<std::string> reported;
    std::size_t not_sent = 0;
    std::size_t in_time = 0;  // late although within the max delay
    std::size_t twice = 0;
    std::size_t wrong_time = 0;
    std::string example;
    const auto suspicious = [&example](const late_record& r) {
      if (example.empty()) {
        example = "'" + r.text + "' at " + std::to_string(r.event_time);
      }
    };
    for (const auto& r : late.records) {
      const auto it = row_of_line.find(r.text);
      if (it == row_of_line.end()) {
        ++not_sent;
        suspicious(r);
        continue;
      }
      if (past_texts.count(r.text) == 0) {
        ++in_time;
        suspicious(r);
      }
      if (!reported.insert(r.text).second) {
        ++twice;
        suspicious(r);
      }
      if (r.event_time != all[it->second].ts) {
        ++wrong_time;
        suspicious(r);
      }
      late_rows.push_back(all[it->second]);
    }
    INFO("first suspicious late event: ", example);
    CHECK_MESSAGE(not_sent == 0, not_sent, " late events are not rows that were sent");
    CHECK_MESSAGE(in_time == 0, in_time, " events within the max delay were reported late");
    CHECK_MESSAGE(twice == 0, twice, " late events were reported more than once");
    CHECK_MESSAGE(wrong_time == 0, wrong_time, " late events carry another time than their row's");
    INFO(late.records.size(), " of ", past.size(), " far-past rows were late");
    CHECK(difference(plus(run.rows, batch_answer(late_rows, sales::region_minute())),
                     batch_answer(all, sales::region_minute())) == "");
  }
}

// ---- 3. backpressure -----------------------------------------------------------------------------------------

namespace {

/// Holds every sink call until opened: a sink that cannot keep up.
class sink_gate {
 public:
  void pass() {
    std::unique_lock lock(mutex_);
    entered_ = true;
    opened_cv_.wait(lock, [&] { return open_; });
  }
  void open() {
    {
      const std::lock_guard lock(mutex_);
      open_ = true;
    }
    opened_cv_.notify_all();
  }
  [[nodiscard]] bool entered() {
    const std::lock_guard lock(mutex_);
    return entered_;
  }

 private:
  std::mutex mutex_;
  std::condition_variable opened_cv_;
  bool entered_ = false;
  bool open_ = false;
};

/// Fixed-width sales rows made on the fly: row i, 10 ms after row i-1, so that bytes consumed
/// and events counted convert into each other.
constexpr std::int64_t firehose_start = 1'700'000'000'000;
constexpr std::size_t firehose_row_bytes = 89;  // zero-padded ids: long rows, fewer to parse per byte
std::size_t firehose_row(std::uint64_t i, char* out) {
  const int n =
      std::snprintf(out, 128, "%lld,%019llu,%019llu,r%llu,c%02llu,%019llu,%llu,%llu.%02llu\n",
                    static_cast<long long>(firehose_start) + static_cast<long long>(i) * 10,
                    static_cast<unsigned long long>(i), static_cast<unsigned long long>(i % 1000),
                    static_cast<unsigned long long>(i % 7), static_cast<unsigned long long>(i % 13),
                    static_cast<unsigned long long>(i % 50), static_cast<unsigned long long>(1 + i % 5),
                    static_cast<unsigned long long>(10 + i % 9000 / 100), static_cast<unsigned long long>(i % 100));
  return static_cast<std::size_t>(n);
}
std::int64_t firehose_revenue(std::uint64_t i) {
  return static_cast<std::int64_t>((1 + i % 5) * ((10 + i % 9000 / 100) * 100 + i % 100));
}

/// The region_minute answer over firehose rows [0, n), computed directly.
answer firehose_answer(std::uint64_t n) {
  constexpr std::int64_t minute = 60'000;
  const std::int64_t first_window = firehose_start - firehose_start % minute;
  // Rows are in time order: sums per (window index, region) in a flat array.
  std::vector<std::pair<std::int64_t, std::int64_t>> sums;
  for (std::uint64_t i = 0; i < n; ++i) {
    const std::int64_t ts = firehose_start + static_cast<std::int64_t>(i) * 10;
    const auto slot = static_cast<std::size_t>((ts - first_window) / minute) * 7 + i % 7;
    if (slot >= sums.size()) {
      sums.resize(slot + 7);
    }
    sums[slot].first += 1;
    sums[slot].second += firehose_revenue(i);
  }
  answer out;
  for (std::size_t slot = 0; slot < sums.size(); ++slot) {
    if (sums[slot].first > 0) {
      const std::int64_t start = first_window + static_cast<std::int64_t>(slot / 7) * minute;
      out["r" + std::to_string(slot % 7) + "@" + std::to_string(start) + "-" + std::to_string(start + minute)] =
          sums[slot];
    }
  }
  return out;
}

struct firehose_progress {
  std::atomic<std::uint64_t> rows{0};     // rows generated (all of them sent once the sender is done)
  std::atomic<std::uint64_t> written{0};  // bytes the kernel accepted
  std::atomic<bool> stalled{false};       // a send could not go on for a while with the sink held
  std::atomic<std::uint64_t> written_at_stall{0};
  std::atomic<bool> released{false};     // the sink was let go: send a little more, then close
  std::atomic<bool> hit_cap{false};      // sent `cap` rows without ever stalling
  std::atomic<bool> peer_closed{false};  // the server closed the connection first
};

/// Sends firehose rows as fast as the connection takes them, until `after_release` more rows have
/// gone out after progress.released, or `cap` rows in all, or the server closes the connection.
/// Non-blocking sends: when one would block and no space comes for a while with the sink held,
/// that is recorded as a stall.
void firehose(std::uint16_t port, std::uint64_t cap, std::uint64_t after_release, sink_gate& gate,
              firehose_progress& progress) {
  client c(port);
  std::string buf;
  buf.reserve(std::size_t{64} << 10U);
  char row[128];
  std::uint64_t i = 0;
  std::uint64_t stop_at = cap;
  while (i < stop_at) {
    if (progress.released && stop_at == cap) {
      stop_at = std::min(cap, i + after_release);
    }
    buf.clear();
    while (i < stop_at && buf.size() + firehose_row_bytes <= buf.capacity()) {
      const std::size_t n = firehose_row(i++, row);
      if (n != firehose_row_bytes) {
        throw std::runtime_error("firehose row of " + std::to_string(n) + " bytes: " + std::string(row, n));
      }
      buf.append(row, n);
    }
    progress.rows = i;
    std::string_view left = buf;
    while (!left.empty()) {
      const ssize_t n = ::send(c.fd(), left.data(), left.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
      if (n > 0) {
        left.remove_prefix(static_cast<std::size_t>(n));
        progress.written += static_cast<std::uint64_t>(n);
        continue;
      }
      if (n < 0 && errno == EINTR) {
        continue;
      }
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
        pollfd p{c.fd(), POLLOUT, 0};
        if (::poll(&p, 1, 250) == 0 && gate.entered() && !progress.stalled) {
          progress.written_at_stall = progress.written.load();
          progress.stalled = true;
        }
        continue;
      }
      if (n < 0 && (errno == EPIPE || errno == ECONNRESET)) {
        progress.peer_closed = true;
        return;
      }
      throw std::runtime_error(std::string("firehose send: ") + std::strerror(errno));
    }
  }
  progress.hit_cap = i == cap;
}

/// region_minute over one firehose connection whose sink is held from its first call until
/// release(): the setting of the backpressure tests. The sender goes on until it is blocked, up
/// to 128 MB (a stream that buffered its input instead of pushing back would take all of it);
/// once released it sends 4 MB more and closes.
class held_sink_run {
 public:
  static constexpr std::uint64_t cap_rows = (std::uint64_t{128} << 20U) / firehose_row_bytes;
  static constexpr std::uint64_t rows_after_release = (std::uint64_t{4} << 20U) / firehose_row_bytes;
  static constexpr unsigned threads = 2;
  static constexpr std::size_t queue_chunks = 8;
  static constexpr std::size_t read_bytes = std::size_t{64} << 10U;
  // A worker takes up to 4 chunks per pop, and the counter is decremented after the pop: while
  // it lags, the freed slots may already be refilled.
  static constexpr auto queued_bound = static_cast<std::int64_t>(threads * (queue_chunks + 4));

  held_sink_run()
      : source_(sluice::csv_lines(sales::csv_schema(), "", input()),
                sluice::tcp_options{.stop_after = 1, .read_bytes = read_bytes}),
        guard_(stop),
        sampler_([this](const std::stop_token& done) {
          while (!done.stop_requested()) {
            const std::int64_t q = metrics.queued.load();
            if (q > max_queued) {
              max_queued = q;
            }
            std::this_thread::sleep_for(100us);
          }
        }) {
    sluice::stream_options opts{.threads = threads, .expected_inputs = 1, .queue_chunks = queue_chunks};
    opts.metrics = &metrics;
    run_ = std::async(std::launch::async, [this, opts] {
      return sluice::run_stream(
          source_, sales::region_minute(),
          [this](const auto& store) {
            gate_.pass();
            rows(store);
          },
          opts, stop.get_token());
    });
    sender_ = std::async(std::launch::async, [this, port = source_.port()] {
      firehose(port, cap_rows, rows_after_release, gate_, progress);
    });
  }
  held_sink_run(const held_sink_run&) = delete;
  held_sink_run& operator=(const held_sink_run&) = delete;
  ~held_sink_run() {
    release();  // even when a REQUIRE failed: no thread left hanging
    if (sender_.valid()) {
      sender_.wait();
    }
    if (run_.valid()) {
      run_.wait();
    }
  }

  /// Waits until the sender is stalled and the connection's queue is full (or the sender hit
  /// its cap: no backpressure). False if neither happens in time.
  bool settle() {
    return eventually([&] {
      return progress.hit_cap || (progress.stalled && metrics.queued.load() == static_cast<std::int64_t>(queue_chunks));
    });
  }
  void release() {
    progress.released = true;
    gate_.open();
  }
  /// Releases the sink, joins the sender and returns the run's stats (rethrowing their errors).
  sluice::stream_stats finish() {
    release();
    sender_.get();
    return run_.get();
  }

  sluice::stream_metrics metrics;
  firehose_progress progress;
  collector rows;
  dead_letter_log dead;
  std::stop_source stop;
  std::atomic<std::int64_t> max_queued{0};

 private:
  sluice::input_options input() {
    sluice::input_options in;
    in.dead_letters = dead.sink();
    return in;
  }

  sink_gate gate_;
  sluice::tcp_source<sluice::csv_lines<decltype(sales::csv_schema())>> source_;
  watchdog guard_;
  std::jthread sampler_;
  std::future<sluice::stream_stats> run_;
  std::future<void> sender_;
};

}  // namespace

TEST_CASE("a held sink stops the reading: queues stay within their bound, the sender blocks, then all arrives") {
  held_sink_run run;
  // The sink is held from its first call (the first minute): the connection's queue fills up,
  // the source stops reading and the sender's writes stop going through.
  REQUIRE_MESSAGE(run.settle(), "neither a stall nor the end: written ", run.progress.written.load(), " queued ",
                  run.metrics.queued.load());
  const std::uint64_t written = run.progress.written_at_stall;
  const std::uint64_t taken_in = run.metrics.bytes.load();
  const std::uint64_t processed = run.metrics.events.load() * firehose_row_bytes;
  INFO("the sender stalled after ", written, " bytes; the engine had taken in ", taken_in, " and parsed ", processed);
  CHECK_MESSAGE(!run.progress.hit_cap, "the sender wrote ", run.progress.written.load(),
                " bytes while the sink was held: no backpressure");
  // Bytes in the engine and not yet parsed: the full queue, plus a popped batch still being
  // parsed (4 chunks) and a record's start carried over.
  CHECK(taken_in >= processed);
  CHECK(taken_in - processed <= (held_sink_run::queue_chunks + 4) * held_sink_run::read_bytes + firehose_row_bytes);
  CHECK(run.max_queued.load() <= held_sink_run::queued_bound);

  const sluice::stream_stats stats = run.finish();
  check_ended_by_itself(run.stop);
  const std::uint64_t rows = run.progress.rows;
  CHECK_FALSE(run.progress.peer_closed.load());
  CHECK(run.max_queued.load() <= held_sink_run::queued_bound);
  CHECK(stats.events == rows);
  CHECK(stats.bytes == rows * firehose_row_bytes);
  CHECK(stats.bad_records == 0);
  CHECK(stats.late_events == 0);
  CHECK(run.rows.emitted_twice.empty());
  CHECK(difference(run.rows.rows, firehose_answer(rows)) == "");
}

TEST_CASE("a stop while the sink is held drains the queued chunks: the answer is exactly the prefix taken in") {
  held_sink_run run;
  REQUIRE(run.settle());
  REQUIRE_FALSE(run.progress.hit_cap.load());
  const std::uint64_t taken_in_before_stop = run.metrics.bytes.load();
  run.stop.request_stop();  // with the workers blocked in the sink and the connection parked
  const sluice::stream_stats stats = run.finish();

  // What the engine took in (the queued chunks, the parked one and what the kernel had
  // received) is parsed to the last whole row; a row cut by the stop is dead-lettered, not lost
  // and not half-counted.
  const std::uint64_t rows = stats.bytes / firehose_row_bytes;
  const bool cut = stats.bytes % firehose_row_bytes != 0;
  CHECK(stats.bytes >= taken_in_before_stop);
  CHECK(stats.events == rows);
  CHECK(stats.bad_records == (cut ? 1U : 0U));
  if (cut) {
    REQUIRE(run.dead.records.size() == 1);
    CHECK(run.dead.records[0].offset == rows * firehose_row_bytes);
    CHECK(run.dead.records[0].reason == "input closed in the middle of a record (no final newline)");
  }
  CHECK(stats.late_events == 0);
  CHECK(run.rows.emitted_twice.empty());
  CHECK(difference(run.rows.rows, firehose_answer(rows)) == "");
}

namespace {

struct repeat_progress {
  std::atomic<std::uint64_t> written{0};
  std::atomic<bool> peer_closed{false};
};

/// Sends `block` over and over, as fast as the connection takes it, until `cap` bytes or the
/// server closes the connection. Far faster than the stream can parse.
void repeat_sender(std::uint16_t port, const std::string& block, std::uint64_t cap, repeat_progress& progress) {
  client c(port);
  while (progress.written + block.size() <= cap) {
    if (!c.send(block)) {
      progress.peer_closed = true;
      return;
    }
    progress.written += block.size();
  }
}

}  // namespace

TEST_CASE("a stop request ends the run while a client keeps sending: the stream takes what had arrived, then closes") {
  // Firehose rows 0..block_rows-1, repeated: row i of the stream is firehose row i % block_rows.
  constexpr std::size_t block_rows = 736;                  // 64 KiB of rows
  constexpr std::uint64_t cap = std::uint64_t{64} << 20U;  // far more than the kernel buffers
  std::string block;
  char row[128];
  for (std::size_t i = 0; i < block_rows; ++i) {
    block.append(row, firehose_row(i, row));
  }
  REQUIRE(block.size() == block_rows * firehose_row_bytes);

  sluice::tcp_source source(sluice::csv_lines(sales::csv_schema(), ""), sluice::tcp_options{.stop_after = 1});
  sluice::stream_metrics metrics;
  collector sink;
  std::stop_source stop;
  const watchdog guard(stop);
  repeat_progress progress;
  sluice::stream_options opts{.threads = 2};
  opts.metrics = &metrics;
  // by_category behind a step that makes each event take 2 us: the workers (and so the stop's
  // draining, which waits for them) are far slower than the sender, whatever the build.
  const auto slow_by_category = sluice::flow<sales::sale>() | sluice::filter([](const sales::sale& /*s*/) {
                                  const auto until = std::chrono::steady_clock::now() + 2us;
                                  while (std::chrono::steady_clock::now() < until) {
                                  }
                                  return true;
                                }) |
                                sluice::key_by(&sales::sale::category) |
                                sluice::aggregate(sluice::count{}, sluice::sum(sales::revenue_cents));
  auto run = std::async(std::launch::async,
                        [&] { return sluice::run_stream(source, slow_by_category, sink, opts, stop.get_token()); });
  auto sender =
      std::async(std::launch::async, [&, port = source.port()] { repeat_sender(port, block, cap, progress); });
  REQUIRE(eventually([&] { return metrics.bytes.load() >= (std::uint64_t{4} << 20U); }));
  stop.request_stop();
  const sluice::stream_stats stats = run.get();
  sender.get();

  // The stop must not wait for the sender to run dry (it never would): what the kernel had
  // received is processed, then the connection is closed under the sender.
  CHECK_MESSAGE(progress.peer_closed.load(), "the sender was never cut off: it wrote all ", progress.written.load(),
                " bytes and the stream took ", stats.bytes, " before the stop returned");
  const std::uint64_t rows = stats.bytes / firehose_row_bytes;
  CHECK(stats.events == rows);
  CHECK(stats.bad_records == (stats.bytes % firehose_row_bytes != 0 ? 1U : 0U));
  answer expected;
  for (std::uint64_t i = 0; i < rows; ++i) {
    auto& slot = expected[std::string(i % block_rows % 13 < 10 ? "c0" : "c") + std::to_string(i % block_rows % 13)];
    slot.first += 1;
    slot.second += firehose_revenue(i % block_rows);
  }
  CHECK(difference(sink.rows, expected) == "");
}

// ---- 4. graceful stop -------------------------------------------------------------------------------------------

TEST_CASE("a stop request drains what was received: every event of a connection left open is counted") {
  const auto rows = random_sales(41, 3000);
  std::string payload = header_line();
  for (const auto& l : data_lines(rows, true, 41)) {
    payload += l;
  }
  const std::string cut = "1700000000000,5,6,r1,c";  // a record the stop cuts off

  for (const unsigned threads : {1U, 2U}) {
    CAPTURE(threads);
    dead_letter_log dead;
    sluice::input_options input;
    input.dead_letters = dead.sink();
    sluice::tcp_source source(sluice::csv_lines(sales::csv_schema(), sales::csv_header, input), sluice::tcp_options{});
    const std::uint16_t port = source.port();
    sluice::stream_metrics metrics;
    collector sink;
    std::stop_source stop;
    const watchdog guard(stop);
    // Both connections hold the watermark from the start: with 1 expected input, `full` could
    // fire windows before `partial` connected (it did under TSan).
    sluice::stream_options opts{.threads = threads, .max_delay = fixture_disorder, .expected_inputs = 2};
    opts.metrics = &metrics;
    auto run = std::async(std::launch::async, [&] {
      return sluice::run_stream(source, sales::region_minute(), sink, opts, stop.get_token());
    });

    client full(port);
    client partial(port);  // says nothing but the start of a record: it holds the watermark back
    std::mt19937_64 rng(threads);
    full.send_in_pieces(payload, rng);
    partial.must_send(cut);
    const bool all_in = eventually(
        [&] { return metrics.events.load() == rows.size() && metrics.bytes.load() == payload.size() + cut.size(); });
    CHECK_MESSAGE(all_in, "events ", metrics.events.load(), " of ", rows.size());
    const bool nothing_fired_yet = metrics.rows_emitted.load() == 0;  // (the cut connection holds W at -inf)
    stop.request_stop();
    const sluice::stream_stats stats = run.get();

    CHECK(nothing_fired_yet);
    CHECK(stats.events == rows.size());
    CHECK(total_count(sink.rows) == static_cast<std::int64_t>(rows.size()));
    CHECK(difference(sink.rows, batch_answer(rows, sales::region_minute())) == "");
    CHECK(sink.emitted_twice.empty());
    CHECK(stats.late_events == 0);
    REQUIRE(dead.records.size() == 1);
    const dead_letter& bad = dead.records[0];
    CHECK(bad.source == partial.input_name());
    CHECK(bad.line == 1);
    CHECK(bad.offset == 0);
    CHECK(bad.reason == "input closed in the middle of a record (no final newline)");
    CHECK(bad.text == cut);
    CHECK(stats.bad_records == 1);
    full.wait_for_server_close();  // the stop closed the connections (a hang here fails by timeout)
    partial.wait_for_server_close();
  }
}

// ---- 5. bad records on a socket ---------------------------------------------------------------------------------

namespace {

struct expected_bad {
  std::uint64_t line;
  std::uint64_t offset;
  std::string reason;
  std::string line_text;  // the whole line; the reported text is a non-empty prefix of it
};

}  // namespace

TEST_CASE("malformed and over-long lines on a socket are dead-lettered at their line; the lines after them count") {
  constexpr std::size_t max_record = 256;
  const auto rows = random_sales(51, 60);
  const auto lines = data_lines(rows, true, 51);
  std::vector<owned_sale> good;
  std::string payload = header_line();
  std::uint64_t line = 2;
  std::vector<expected_bad> expected;
  const auto add_bad = [&](const std::string& text, const std::string& reason) {
    expected.push_back({line++, payload.size(), reason, chomp(text)});
    payload += text;
  };
  for (std::size_t j = 0; j < rows.size(); ++j) {
    switch (j) {
      case 5:
        add_bad("garbage," + lines[j], "expected 8 fields, found 9");
        break;
      case 9:
        add_bad("1700000000000,1,2,r1,c1,3,x,1.00\n", "field 'qty' (column 7): not an integer: 'x'");
        break;
      case 12:  // over-long with a valid shape: a 400-byte category
        add_bad("1700000000000,1,2,r1,c" + std::string(400, 'z') + ",3,4,1.00\n",
                "record exceeds the max record size (256 bytes)");
        break;
      case 20:  // over-long garbage without any comma, 3 KiB
        add_bad(std::string(3000, 'q') + "\n", "record exceeds the max record size (256 bytes)");
        break;
      case 21:  // two over-long lines in a row, the second just past the limit
        add_bad("1700000000000,1,2,r1,c" + std::string(max_record, 'y') + ",3,4,1.00\r\n",
                "record exceeds the max record size (256 bytes)");
        break;
      case 30:
        add_bad("1,2,3\n", "expected 8 fields, found 3");
        break;
      default:
        break;
    }
    payload += lines[j];
    good.push_back(rows[j]);
    ++line;
  }
  const answer expected_answer = batch_answer(good, sales::by_category());

  for (const std::uint64_t seed : {1U, 2U, 3U, 4U}) {
    const unsigned threads = 1 + static_cast<unsigned>(seed % 2);
    CAPTURE(seed);
    CAPTURE(threads);
    dead_letter_log dead;
    sluice::input_options input;
    input.max_record_bytes = max_record;
    input.dead_letters = dead.sink();
    sluice::tcp_source source(sluice::csv_lines(sales::csv_schema(), sales::csv_header, input),
                              sluice::tcp_options{.stop_after = 1});
    collector sink;
    std::stop_source stop;
    const watchdog guard(stop);
    std::string name;
    auto sender = std::async(std::launch::async, [&, port = source.port()] {
      std::mt19937_64 rng(seed);
      client c(port);
      name = c.input_name();
      c.send_in_pieces(payload, rng);
    });
    const sluice::stream_stats stats = sluice::run_stream(source, sales::by_category(), sink,
                                                          sluice::stream_options{.threads = threads}, stop.get_token());
    sender.get();
    check_ended_by_itself(stop);

    CHECK(stats.events == good.size());
    CHECK(stats.bad_records == expected.size());
    CHECK(difference(sink.rows, expected_answer) == "");
    REQUIRE(dead.records.size() == expected.size());
    for (std::size_t i = 0; i < expected.size(); ++i) {
      CAPTURE(i);
      const dead_letter& bad = dead.records[i];
      CHECK(bad.source == name);
      CHECK(bad.line == expected[i].line);
      CHECK(bad.offset == expected[i].offset);
      CHECK(bad.reason == expected[i].reason);
      CHECK(!bad.text.empty());
      CHECK(bad.text.size() <= max_record);
      CHECK_MESSAGE(expected[i].line_text.starts_with(chomp(bad.text)), "reported text '", bad.text, "'");
    }
  }
}

TEST_CASE("a client that disconnects mid-record has that record dead-lettered; the next connection starts clean") {
  const auto rows = random_sales(52, 9);
  const auto lines = data_lines(rows, false, 0);
  const std::vector<owned_sale> sent_whole(rows.begin(), rows.begin() + 8);
  const std::string first = header_line() + lines[0] + lines[1] + lines[2];
  const std::string cut = chomp(lines[8]).substr(0, 30);  // the line, cut before its end
  const std::string second = header_line() + lines[3] + lines[4] + lines[5] + lines[6] + lines[7];

  for (const unsigned threads : {1U, 2U}) {
    CAPTURE(threads);
    dead_letter_log dead;
    sluice::input_options input;
    input.dead_letters = dead.sink();
    sluice::tcp_source source(sluice::csv_lines(sales::csv_schema(), sales::csv_header, input),
                              sluice::tcp_options{.stop_after = 2});
    collector sink;
    std::stop_source stop;
    const watchdog guard(stop);
    std::string cut_name;
    auto sender = std::async(std::launch::async, [&, port = source.port()] {
      std::mt19937_64 rng(threads);
      {
        client c(port);
        cut_name = c.input_name();
        c.send_in_pieces(first + cut, rng);
      }  // closed here, in the middle of the record
      client next(port);
      next.send_in_pieces(second, rng);
    });
    const sluice::stream_stats stats = sluice::run_stream(source, sales::by_category(), sink,
                                                          sluice::stream_options{.threads = threads}, stop.get_token());
    sender.get();
    check_ended_by_itself(stop);

    CHECK(stats.events == 8);
    CHECK(stats.inputs == 2);
    CHECK(stats.bad_records == 1);
    CHECK(difference(sink.rows, batch_answer(sent_whole, sales::by_category())) == "");
    REQUIRE(dead.records.size() == 1);
    const dead_letter& bad = dead.records[0];
    CHECK(bad.source == cut_name);
    CHECK(bad.line == 5);
    CHECK(bad.offset == first.size());
    CHECK(bad.reason == "input closed in the middle of a record (no final newline)");
    CHECK(bad.text == cut);
  }
}

// ---- 6. policy fail ---------------------------------------------------------------------------------------------

TEST_CASE("under bad_record_policy::fail a bad line on a socket ends the run with its connection, line and byte") {
  const auto rows = random_sales(61, 40);
  const auto lines = data_lines(rows, false, 0);
  std::string payload = header_line();
  for (std::size_t j = 0; j < 25; ++j) {
    payload += lines[j];
  }
  const std::size_t bad_offset = payload.size();
  payload += "1,2,3\n";  // line 27
  for (std::size_t j = 25; j < lines.size(); ++j) {
    payload += lines[j];
  }

  for (const unsigned threads : {1U, 3U}) {
    CAPTURE(threads);
    sluice::input_options input;
    input.on_bad_record = sluice::bad_record_policy::fail;
    sluice::tcp_source source(sluice::csv_lines(sales::csv_schema(), sales::csv_header, input),
                              sluice::tcp_options{});  // no scripted end: the failure must end the run
    const std::uint16_t port = source.port();
    std::stop_source stop;
    const watchdog guard(stop);
    client quiet(port);  // a good connection that stays open
    quiet.must_send(header_line() + lines[0]);
    client bad(port);
    std::mt19937_64 rng(threads);
    bad.send_in_pieces(payload, rng);  // and stays open too
    std::string message;
    try {
      (void)sluice::run_stream(
          source, sales::by_category(), [](const auto& /*rows*/) {}, sluice::stream_options{.threads = threads},
          stop.get_token());
    } catch (const sluice::bad_input_error& e) {
      message = e.what();
    }
    check_ended_by_itself(stop);
    CHECK(message == bad.input_name() + ":27: byte " + std::to_string(bad_offset) + ": expected 8 fields, found 3");
    quiet.wait_for_server_close();
    bad.wait_for_server_close();
  }
}

// ---- 7. many connections ---------------------------------------------------------------------------------------

TEST_CASE("64 concurrent connections, a few of them empty or header-only, are all counted") {
  constexpr std::size_t connections = 64;
  const auto rows = random_sales(71, 1500);  // 25 for each of 60 connections
  const auto lines = data_lines(rows, true, 71);
  // 60 connections carry rows; 2 send only the header and 2 send nothing at all.
  std::vector<std::string> payloads = distribute(lines, 60, true, 71);
  payloads.push_back(header_line());
  payloads.push_back("");
  payloads.push_back(header_line());
  payloads.push_back("");
  std::mt19937_64 shuffle(71);
  std::shuffle(payloads.begin(), payloads.end(), shuffle);
  REQUIRE(payloads.size() == connections);

  const sluice::stream_options opts{.threads = 3, .max_delay = fixture_disorder, .expected_inputs = connections};
  const tcp_run minute = stream_over_tcp(sales::region_minute(), payloads, opts, 71, {}, 8);
  CHECK(minute.stats.inputs == connections);
  CHECK(minute.stats.events == rows.size());
  CHECK(minute.stats.late_events == 0);
  CHECK(minute.stats.bad_records == 0);
  CHECK(minute.emitted_twice.empty());
  CHECK(difference(minute.rows, batch_answer(rows, sales::region_minute())) == "");

  const tcp_run category = stream_over_tcp(sales::by_category(), payloads, opts, 72, {}, 8);
  CHECK(category.stats.inputs == connections);
  CHECK(category.stats.events == rows.size());
  CHECK(difference(category.rows, batch_answer(rows, sales::by_category())) == "");
}
