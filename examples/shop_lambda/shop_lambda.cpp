// shop_lambda: the seed's e-commerce example, end to end, in one process: "the batch layer
// computes revenue by category and region over the whole history, the speed layer tracks what
// is popular in the last 5 minutes, and the serving layer shows both merged."
//
//   sender threads --N loopback TCP connections--> tcp_source --run_ingest--> lambda_engine
//     (FILE's rows, header first       one event log, two views over it:
//      on each connection)               revenue  key_by(category, region) | aggregate(count, sum(revenue))
//                                        popular  event_time(ts) | key_by(product_id)
//                                                 | window(sliding(5min, 1min)) | aggregate(sum(qty))
//   http_server: GET /revenue, GET /popular (top 10 of the latest window), GET /status
//
// While the rows go in, a progress line every --progress-every shows this program's own
// GET /status (fetched over HTTP, as any client would): rows ingested, the log head, the batch
// horizon following it a few segments behind, the speed epochs that fill the gap, late counts.
// When the senders are done the program seals the log's last segment and waits until the batch
// horizon reaches the head (the served answers are then the batch layer's alone), prints both
// answers and checks them: revenue as served == batch mode over the log == batch mode over FILE,
// and popular as served == a Kappa replay of the log (sluice::replay_to_head). A mismatch is a
// diff summary and exit status 1.
//
//   shop_lambda --input FILE [--log DIR] [--connections N] [--serve HOST:PORT] [--keep-serving]
//               [--segment-bytes N] [--segment-age D] [--max-delay D] [--fsync POLICY] ...
#include <utility>  // before Asio: Boost 1.74's awaitable.hpp uses std::exchange

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <filesystem>
#include <iterator>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <stdexcept>
#include <stop_token>
#include <string>
#include <string_view>
#include <system_error>
#include <thread>
#include <vector>

#include <fmt/core.h>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/write.hpp>

#include "../common/cli.hpp"
#include "../common/log_flags.hpp"
#include "../sales/lambda_mode.hpp"
#include "../sales/sales.hpp"
#include "sluice/io/csv_text.hpp"
#include "sluice/io/endpoint.hpp"
#include "sluice/io/file_source.hpp"
#include "sluice/io/iso8601.hpp"
#include "sluice/io/mapped_file.hpp"
#include "sluice/io/signals.hpp"
#include "sluice/serve/http_client.hpp"
#include "sluice/run/batch.hpp"
#include "sluice/store/window_top_k.hpp"

namespace {

using namespace std::chrono_literals;
using sales::sale;
using clock_type = std::chrono::steady_clock;

constexpr const char* usage =
    "usage: shop_lambda --input FILE [--log DIR] [--connections N] [--serve HOST:PORT] [--keep-serving]\n"
    "                   [--segment-bytes N] [--segment-age D] [--max-delay D] [--fsync POLICY]\n"
    "                   [--progress-every D] [--catch-up-timeout D]\n"
    "The Lambda architecture on a sales CSV (gen_sales), in one process: the rows go over N loopback\n"
    "TCP connections into an event log; a batch layer computes revenue by category and region over\n"
    "the sealed segments, a speed layer covers the rest and tracks the products popular in the last\n"
    "5 minutes of event time; HTTP serves both merged. Then checks the answers against batch mode\n"
    "over the log and over FILE, and against a Kappa replay of the log (exit status 1 if they differ).\n"
    "  --input FILE          the rows to send (CSV with the header ts,order_id,...,price)\n"
    "  --log DIR             the event log (default: a fresh temporary directory, removed at exit)\n"
    "  --connections N       loopback TCP connections, one sender thread each (default 4)\n"
    "  --serve HOST:PORT     HTTP: GET /revenue, /popular, /status (default 127.0.0.1:0: a free port)\n"
    "  --keep-serving        after the checks, serve until SIGINT/SIGTERM\n"
    "  --segment-bytes N     seal a log segment (an epoch) at this size (default 8 MiB)\n"
    "  --segment-age D       ... or at this age (default 500ms)\n"
    "  --max-delay D         the speed layer's bounded out-of-orderness (default 1s)\n"
    "  --fsync POLICY        always, interval:MS (default interval:100) or never\n"
    "  --progress-every D    print GET /status this often while rows go in (default 250ms)\n"
    "  --catch-up-timeout D  give up (exit 1) if the batch layer has not reached the log head\n"
    "                        this long after the last row (default 2min)\n"
    "Durations: 500ms, 5s, 2min.\n";

struct options {
  std::string input;
  std::string log;
  std::size_t connections = 4;
  std::string serve = "127.0.0.1:0";
  bool keep_serving = false;
  sluice::log_options log_options{.segment_bytes = std::uint64_t{8} << 20U, .segment_age = 500ms};
  std::chrono::milliseconds max_delay = 1s;
  std::chrono::milliseconds progress_every = 250ms;
  std::chrono::milliseconds catch_up_timeout = 2min;
};

options parse_args(int argc, char** argv) {
  options o;
  cli::args args("shop_lambda", usage, argc, argv);
  while (args.next()) {
    const std::string_view a = args.current();
    if (a == "--input") {
      o.input = args.value();
    } else if (a == "--log") {
      o.log = args.value();
    } else if (a == "--connections") {
      o.connections = args.whole_number(args.value(), "--connections");
      if (o.connections == 0 || o.connections > 64) {
        args.fail("--connections must be a number from 1 to 64");
      }
    } else if (a == "--serve") {
      o.serve = args.value();
    } else if (a == "--keep-serving") {
      o.keep_serving = true;
    } else if (cli::log_flag(args, o.log_options)) {
      // --segment-bytes, --segment-age, --fsync
    } else if (a == "--max-delay") {
      o.max_delay = args.duration();
    } else if (a == "--progress-every") {
      o.progress_every = std::max(args.duration(), std::chrono::milliseconds(10));
    } else if (a == "--catch-up-timeout") {
      o.catch_up_timeout = args.duration();
    } else {
      args.unexpected();
    }
  }
  if (o.input.empty()) {
    args.fail("expected --input FILE");
  }
  return o;
}

void say(const std::string& line) {
  std::fwrite(line.data(), 1, line.size(), stdout);
  std::fputc('\n', stdout);
  std::fflush(stdout);
}

// ---- the two views ------------------------------------------------------------------------

/// Revenue by (category, region) over the whole history: orders and revenue in cents.
auto revenue_flow() {
  return sluice::flow<sale>() | sluice::key_by(&sale::category, &sale::region) |
         sluice::aggregate(sluice::count{}, sluice::sum(sales::revenue_cents));
}

constexpr auto popular_window = 5min;
constexpr auto popular_slide = 1min;

/// Quantity sold per product in 5-minute event-time windows, a new one every minute.
auto popular_flow() {
  return sluice::flow<sale>() | sluice::event_time(&sale::ts) | sluice::key_by(&sale::product_id) |
         sluice::window(sluice::sliding(popular_window, popular_slide)) | sluice::aggregate(sluice::sum(&sale::qty));
}

constexpr const char* revenue_header = "category,region,orders,revenue\n";
constexpr const char* popular_header = "window_start,window_end,product_id,qty\n";

template <class Store>
std::string revenue_csv(const Store& store) {
  std::string out = revenue_header;
  for (const auto& row : store.scan()) {
    const auto& [category, region] = row.key;
    const auto& [orders, revenue] = row.value;
    sluice::append_csv_field(out, category);
    out += ',';
    sluice::append_csv_field(out, region);
    fmt::format_to(std::back_inserter(out), ",{},{}\n", orders, sales::format_cents(revenue));
  }
  return out;
}

/// "Popular in the last 5 minutes": the latest window that has ended by the latest event time
/// (windows start every minute, so it ends where the latest event's minute starts); if no row
/// falls in it (the data spans less time), the window of the 5 minutes up to the end of the
/// latest event's minute, open, with its sum so far. Its 10 products with the largest quantity,
/// ties to the smaller id.
template <class Store>
std::string popular_csv(const Store& store) {
  constexpr std::int64_t size = std::chrono::milliseconds(popular_window).count();
  constexpr std::int64_t slide = std::chrono::milliseconds(popular_slide).count();
  std::optional<std::int64_t> latest_start;
  if constexpr (requires { store.windows(); }) {  // a Lambda snapshot knows its windows (by start)
    if (const auto windows = store.windows(); !windows.empty()) {
      latest_start = windows.back().start.count();
    }
  } else {
    store.for_each([&](const auto& key, const auto& /*qty*/) {
      latest_start = std::max(latest_start.value_or(key.window.start.count()), key.window.start.count());
    });
  }
  std::string out = popular_header;
  if (!latest_start) {
    return out;
  }
  const auto by_qty = [](std::int64_t qty) { return qty; };
  auto top = sluice::top_k_by_window(store, 10, by_qty, sluice::millis{*latest_start - size});
  if (top.empty()) {
    top = sluice::top_k_by_window(store, 10, by_qty, sluice::millis{*latest_start - size + slide});
  }
  for (const auto& row : top) {
    fmt::format_to(std::back_inserter(out), "{},{},{},{}\n", sluice::format_iso8601(row.key.window.start),
                   sluice::format_iso8601(row.key.window.end), row.key.key, row.value);
  }
  return out;
}

/// "" when the served view and the expected store hold the same keys with the same answers;
/// else how many keys differ.
template <class Served, class Expected>
std::string store_diff(const Served& served, const Expected& expected) {
  std::size_t differs = 0;
  expected.for_each([&](const auto& key, const auto& value) {
    const auto other = served.get(key);
    differs += !other || *other != value ? 1 : 0;
  });
  const std::size_t served_size = served.size();
  if (differs == 0 && served_size == expected.size()) {
    return "";
  }
  return fmt::format("{} keys served, {} expected; {} expected keys missing or with another answer", served_size,
                     expected.size(), differs);
}

/// "" when the two CSV texts are equal; else how they differ: counts and the first few lines
/// found on one side only.
std::string diff_summary(const std::string& served, const std::string& expected) {
  if (served == expected) {
    return "";
  }
  const auto lines = [](const std::string& text) {
    std::multiset<std::string> out;
    for (std::size_t pos = 0; pos < text.size();) {
      const std::size_t nl = std::min(text.find('\n', pos), text.size());
      out.insert(text.substr(pos, nl - pos));
      pos = nl + 1;
    }
    return out;
  };
  const auto a = lines(served);
  const auto b = lines(expected);
  std::vector<std::string> only_served;
  std::vector<std::string> only_expected;
  std::set_difference(a.begin(), a.end(), b.begin(), b.end(), std::back_inserter(only_served));
  std::set_difference(b.begin(), b.end(), a.begin(), a.end(), std::back_inserter(only_expected));
  std::string out = fmt::format("{} lines served, {} expected; {} only served, {} only expected", a.size(), b.size(),
                                only_served.size(), only_expected.size());
  for (std::size_t i = 0; i < std::min<std::size_t>(5, only_served.size()); ++i) {
    out += "\n  served only:   " + only_served[i];
  }
  for (std::size_t i = 0; i < std::min<std::size_t>(5, only_expected.size()); ++i) {
    out += "\n  expected only: " + only_expected[i];
  }
  return out;
}

// ---- the clients: sender threads and a tiny HTTP GET --------------------------------------

/// Sends FILE's data lines to `port` over `n` connections, one thread each: the header line
/// first, then blocks k, k + n, k + 2n, ... of about 256 KiB of whole lines, so that every
/// connection's event times stay close to the others' (the speed layer's watermark is the
/// minimum over the connections; a connection far behind would hold it back).
class senders {
 public:
  /// Maps the file and cuts it into blocks; throws if it cannot be read.
  explicit senders(const std::string& path) : file_(path) {
    std::string_view text = file_.view();
    const std::size_t header_end = text.find('\n');
    if (header_end == std::string_view::npos) {
      throw std::runtime_error(path + ": expected a header line and rows");
    }
    header_ = text.substr(0, header_end + 1);
    text.remove_prefix(header_end + 1);
    constexpr std::size_t block = std::size_t{256} << 10U;
    while (!text.empty()) {
      const std::size_t nl = text.size() <= block ? std::string_view::npos : text.find('\n', block);
      const std::size_t end = nl == std::string_view::npos ? text.size() : nl + 1;
      blocks_.push_back(text.substr(0, end));
      text.remove_prefix(end);
    }
  }
  senders(const senders&) = delete;
  senders& operator=(const senders&) = delete;
  ~senders() { join(); }

  void start(std::uint16_t port, std::size_t n) {
    for (std::size_t i = 0; i < n; ++i) {
      threads_.emplace_back([this, port, i, n] { send(port, i, n); });
    }
  }

  /// Wait for every sender; the first one's error, if any.
  std::exception_ptr join() {
    for (std::thread& t : threads_) {
      if (t.joinable()) {
        t.join();
      }
    }
    return error_;
  }

 private:
  void send(std::uint16_t port, std::size_t first, std::size_t step) {
    try {
      boost::asio::io_context io;
      boost::asio::ip::tcp::socket socket(io);
      socket.connect({boost::asio::ip::make_address("127.0.0.1"), port});
      boost::asio::write(socket, boost::asio::buffer(header_.data(), header_.size()));
      for (std::size_t k = first; k < blocks_.size(); k += step) {
        boost::asio::write(socket, boost::asio::buffer(blocks_[k].data(), blocks_[k].size()));
      }
      socket.shutdown(boost::asio::ip::tcp::socket::shutdown_send);  // end of this input
    } catch (...) {
      std::lock_guard lock(mutex_);
      if (!error_) {
        error_ = std::current_exception();
      }
    }
  }

  sluice::mapped_file file_;
  std::string_view header_;
  std::vector<std::string_view> blocks_;
  std::mutex mutex_;
  std::exception_ptr error_;
  std::vector<std::thread> threads_;
};

/// GET `target` from the HTTP server at `endpoint` ("127.0.0.1:PORT"): the body of a 200 answer.
std::string http_get(const std::string& endpoint, const std::string& target) {
  return sluice::http_client(endpoint).get(target);
}

/// The text of a number or array field of the flat JSON that /status answers ("" if absent).
std::string json_field(std::string_view json, std::string_view name) {
  const std::string key = "\"" + std::string(name) + "\":";
  const std::size_t at = json.find(key);
  if (at == std::string_view::npos) {
    return "";
  }
  const std::size_t begin = at + key.size();
  const std::size_t end = json[begin] == '[' ? json.find(']', begin) + 1 : json.find_first_of(",}", begin);
  return std::string(json.substr(begin, end - begin));
}

/// One progress line from GET /status: what the batch layer covers behind the log head, and
/// the speed epochs that cover the rest.
std::string progress_line(double seconds, const std::string& status) {
  auto field = [&](std::string_view name) { return json_field(status, name); };
  std::string epochs = field("speed_epochs");  // "[3,4,5]"
  const std::size_t held = epochs.size() <= 2 ? 0 : std::count(epochs.begin(), epochs.end(), ',') + 1;
  if (held > 4) {
    epochs = fmt::format("[{}..{}]", epochs.substr(1, epochs.find(',') - 1),
                         epochs.substr(epochs.rfind(',') + 1, epochs.size() - epochs.rfind(',') - 2));
  }
  const std::string partly = field("partly_late");  // sliding windows it missed some of
  return fmt::format(
      "{:6.2f} s  ingested {:>9}  log head {:>9} ({} sealed)  batch horizon epoch {:>3} offset {:>9}  "
      "speed epochs {} ({})  late {} ({} not yet covered by batch){}",
      seconds, field("ingested"), field("log_head"), field("sealed_epochs"), field("epoch"), field("offset"), epochs,
      held, field("late"), field("late_not_covered"), partly.empty() ? "" : ", partly late " + partly);
}

// ---- the run --------------------------------------------------------------------------------

/// A fresh temporary directory for the log, removed at exit (unless the user named one).
struct log_dir {
  std::string path;
  bool temporary = false;
  explicit log_dir(const std::string& given) : path(given) {
    if (path.empty()) {
      std::string pattern = (std::filesystem::temp_directory_path() / "shop-lambda-XXXXXX").string();
      if (::mkdtemp(pattern.data()) == nullptr) {
        throw std::system_error(errno, std::generic_category(), "mkdtemp " + pattern);
      }
      path = pattern;
      temporary = true;
    }
  }
  log_dir(const log_dir&) = delete;
  log_dir& operator=(const log_dir&) = delete;
  ~log_dir() {
    if (temporary) {
      std::error_code ignored;
      std::filesystem::remove_all(path, ignored);
    }
  }
};

double since(clock_type::time_point t) {
  return std::chrono::duration<double>(clock_type::now() - t).count();
}

int run(const options& o, std::stop_source& stop) {
  const auto program_start = clock_type::now();
  senders send(o.input);  // declared first: its threads are joined after the ingest has stopped
  const log_dir dir(o.log);
  const auto payloads = sluice::csv_payloads(sales::csv_schema(), sales::csv_header);
  const auto revenue = revenue_flow();
  const auto popular = popular_flow();

  sluice::lambda_options opts;
  opts.log = o.log_options;
  opts.max_delay = o.max_delay;
  sales::return_freed_tables_to_the_os();
  sluice::lambda_engine engine(dir.path, payloads, opts, revenue, popular);
  const std::uint64_t head_before = engine.status().log_head;
  say(fmt::format("shop_lambda: event log {}{} ({} records before this run; segments of {} bytes or {} ms, fsync {})",
                  dir.path, dir.temporary ? " (temporary)" : "", head_before, o.log_options.segment_bytes,
                  o.log_options.segment_age.count(), o.log_options.fsync.to_string()));
  engine.start_batch_layer();

  sluice::http_router routes;
  routes.add("/revenue", [&](const sluice::http_request& r) {
    return sales::query_response(r, [&] { return revenue_csv(engine.snapshot<0>().store); });
  });
  routes.add("/popular", [&](const sluice::http_request& r) {
    return sales::query_response(r, [&] { return popular_csv(engine.snapshot<1>().store); });
  });
  routes.add("/status", [&](const sluice::http_request& /*request*/) {
    // The engine's counters; late ones are the popular view's (revenue has no windows: nothing
    // is ever late for it).
    return sluice::http_response::json(sales::status_json("revenue,popular", engine.status<1>(), engine.batch_error()));
  });
  sluice::http_server server(std::move(routes), sluice::http_options{.listen = o.serve});
  const std::string http = server.local_endpoint();
  say(fmt::format("shop_lambda: serving http://{}/revenue, /popular and /status", http));

  std::uint64_t bad_seen = 0;
  sluice::input_options input;
  input.dead_letters = [&](const sluice::bad_record& r) {
    if (++bad_seen <= 5) {
      std::fprintf(stderr, "shop_lambda: bad record: %s\n", sluice::describe(r).c_str());
    }
  };
  auto source = std::make_unique<sluice::tcp_source<decltype(sluice::csv_lines(sales::csv_schema(), ""))>>(
      sluice::csv_lines(sales::csv_schema(), sales::csv_header, input),
      sluice::tcp_options{.listen = "127.0.0.1:0", .stop_after = o.connections});
  std::exception_ptr ingest_error;
  std::atomic<bool> ingest_done{false};
  std::stop_source ingest_stop;  // a signal, or leaving this function early (the jthread's stop)
  const std::stop_callback on_signal(stop.get_token(), [&] { ingest_stop.request_stop(); });
  std::jthread ingest([&](const std::stop_token& leaving) {
    const std::stop_callback on_leaving(leaving, [&] { ingest_stop.request_stop(); });
    try {
      sluice::run_ingest(
          *source, engine, [](const sale& s) { return s.ts; }, ingest_stop.get_token());
    } catch (...) {
      ingest_error = std::current_exception();
    }
    ingest_done = true;
  });

  const auto started = clock_type::now();
  const auto seconds = [&] { return since(started); };
  say(fmt::format("shop_lambda: sending {} over {} connections to {}", o.input, o.connections,
                  source->local_endpoint()));
  send.start(source->port(), o.connections);
  // The batch layer catching up behind the speed layer, as a client of /status sees it.
  while (!ingest_done && !stop.stop_requested()) {
    say(progress_line(seconds(), http_get(http, "/status")));
    const auto next = clock_type::now() + o.progress_every;
    while (!ingest_done && !stop.stop_requested() && clock_type::now() < next) {
      std::this_thread::sleep_for(5ms);
    }
  }
  ingest.join();
  source.reset();  // closes what is still open, so that no sender waits on a stopped reader
  const std::exception_ptr send_error = send.join();
  if (ingest_error) {
    std::rethrow_exception(ingest_error);
  }
  const auto stopped_early = [&] {
    say("shop_lambda: stopped by a signal before the batch layer caught up; no checks");
    server.stop();
    engine.stop_batch_layer();
    return 0;
  };
  if (stop.stop_requested()) {
    return stopped_early();
  }
  if (send_error) {
    std::rethrow_exception(send_error);
  }
  const double ingest_seconds = seconds();

  // The input has ended: seal the last segment, so that the batch layer can cover all of it.
  engine.seal();
  std::string status = http_get(http, "/status");
  for (const auto deadline = clock_type::now() + o.catch_up_timeout;
       json_field(status, "caught_up") != "true" && !stop.stop_requested();) {
    if (clock_type::now() > deadline || json_field(status, "batch_error") != "null") {
      throw std::runtime_error(fmt::format("the batch horizon did not reach the log head within {} ms: {}",
                                           o.catch_up_timeout.count(), status));
    }
    std::this_thread::sleep_for(std::min<std::chrono::milliseconds>(o.progress_every, 20ms));
    status = http_get(http, "/status");
  }
  if (stop.stop_requested()) {
    return stopped_early();
  }
  say(progress_line(seconds(), status));
  say(fmt::format(
      "shop_lambda: {} rows in {:.2f} s; the batch horizon reached the log head {:.2f} s later ({} batch "
      "runs); the speed layer now holds no epoch",
      json_field(status, "ingested"), ingest_seconds, seconds() - ingest_seconds, json_field(status, "batch_runs")));

  const std::string served_revenue = http_get(http, "/revenue");
  const std::string served_popular = http_get(http, "/popular");
  say(fmt::format("\n== GET http://{}/revenue (first 12 lines of {})", http,
                  std::count(served_revenue.begin(), served_revenue.end(), '\n')));
  std::size_t shown = 0;
  for (std::size_t i = 0; i < 12 && shown < served_revenue.size(); ++i) {
    shown = served_revenue.find('\n', shown) + 1;
  }
  std::fwrite(served_revenue.data(), 1, shown, stdout);
  say(fmt::format("\n== GET http://{}/popular (the latest 5-minute window that has ended: top 10 by qty)", http));
  std::fwrite(served_popular.data(), 1, served_popular.size(), stdout);
  say("");

  // The checks: what is served is what batch mode computes over the same records.
  int failures = 0;
  auto check = [&](const std::string& what, const std::string& diff) {
    if (diff.empty()) {
      say("shop_lambda: " + what);
    } else {
      ++failures;
      std::fprintf(stderr, "shop_lambda: MISMATCH: not %s\n  %s\n", what.c_str(), diff.c_str());
    }
  };
  sluice::batch_stats log_stats;
  const auto over_log =
      sluice::run_batch(sluice::log_source<decltype(payloads)>::whole(dir.path, payloads), revenue, {}, &log_stats);
  check(fmt::format("served revenue == batch recompute over the log ({} rows)", log_stats.records),
        diff_summary(served_revenue, revenue_csv(over_log)));
  if (head_before == 0) {
    sluice::batch_stats file_stats;
    const auto over_file = sluice::run_batch(sluice::csv_file(o.input, sales::csv_schema()), revenue, {}, &file_stats);
    check(fmt::format("served revenue == batch over the input file ({} rows)", file_stats.records),
          diff_summary(served_revenue, revenue_csv(over_file)));
  } else {
    say(fmt::format("shop_lambda: (no check against {}: the log held {} records before this run)", o.input,
                    head_before));
  }

  // Kappa: no batch layer; the stream path replayed over the log up to its head.
  const auto replayed = sluice::replay_to_head(popular, payloads, dir.path);
  const std::string views_diff = store_diff(engine.snapshot<1>().store, replayed);
  check(fmt::format("Kappa: replay_to_head over the log == the served popular view ({} product-windows)",
                    replayed.size()),
        views_diff.empty() ? diff_summary(served_popular, popular_csv(replayed)) : views_diff);
  if (failures == 0) {
    say(fmt::format("shop_lambda: all checks passed; {:.1f} s in all", since(program_start)));
  }

  if (o.keep_serving && failures == 0) {
    say(fmt::format("shop_lambda: serving http://{}/revenue, /popular and /status until SIGINT/SIGTERM", http));
    sales::wait_until_stopped(stop.get_token());
  }
  server.stop();
  engine.stop_batch_layer();
  return failures == 0 ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  const options o = parse_args(argc, argv);
  std::stop_source stop;
  const sluice::stop_on_signals signals(stop);  // before any other thread starts
  try {
    return run(o, stop);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "shop_lambda: %s\n", e.what());
    return 1;
  }
}
