// nexmark: the Nexmark benchmark's queries (queries.hpp) over its events, in batch mode over a
// JSON lines file or the in-process generator, and in stream mode over TCP, with one answer.
//
//   nexmark QUERY (--input FILE | --generate N [--rate R] [--seed S] | --listen HOST:PORT
//                  [--connections N]) [--threads N] [--max-delay D] [--output FILE|none]
//   nexmark QUERY --explain [--dot]      (the query's flow, as text or Graphviz; reads no input)
//
// Prints the query's rows as CSV with a header (--output none counts them without writing: the
// suite's blackhole sink), and on stderr: events read, rows out, seconds, events/s.
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <stdexcept>
#include <type_traits>
#include <algorithm>
#include <utility>
#include <stop_token>
#include <string>
#include <string_view>
#include <vector>

#include <fmt/core.h>

#include "../common/cli.hpp"
#include "generator.hpp"
#include "json.hpp"
#include "queries.hpp"
#include "sluice/io/lines_file.hpp"
#include "sluice/io/memory_source.hpp"
#include "sluice/io/signals.hpp"
#include "sluice/io/table_file.hpp"
#include "sluice/io/file_source.hpp"
#include "sluice/io/stream_format.hpp"
#include "sluice/io/tcp_source.hpp"
#include "sluice/io/text_file.hpp"
#include "sluice/io/text_lines.hpp"
#include "sluice/run/batch.hpp"
#include "sluice/run/stream.hpp"

namespace {

using namespace std::chrono_literals;

constexpr const char* usage =
    "usage: nexmark QUERY (--input FILE | --generate N [--rate R] [--seed S] [--out-of-order D] |\n"
    "                      --listen HOST:PORT [--connections N]) [--threads N] [--max-delay D]\n"
    "                      [--output FILE|none] [--side-input FILE]\n"
    "       nexmark QUERY --explain [--dot]\n"
    "  Runs a Nexmark query (q0-q22) over Nexmark events; prints its rows as CSV (q12 windows by\n"
    "  the wall clock: its rows depend on the run, the others' only on the events).\n"
    "  --input FILE    batch mode over a JSON lines file (gen_nexmark's), every core (--threads N)\n"
    "  --generate N    batch mode over N events made in process by the generator (no JSON)\n"
    "  --rate R        the generator's events per second of event time; --seed S its seed;\n"
    "                  --out-of-order D: its events up to D behind the latest (gen_nexmark's)\n"
    "  --listen H:P    stream mode: accept TCP connections sending JSON lines; port 0 picks a free\n"
    "                  port, printed on stderr; --connections N: stop after N have closed\n"
    "  --max-delay D   stream mode: the watermark lags the latest event time by D (default 4s)\n"
    "  --output FILE   where the rows go (default: stdout); none: count them only\n"
    "  --side-input F  q13's table: CSV key,value lines without a header\n"
    "  --explain       print the query's flow, one line a stage, and exit; --dot: as Graphviz DOT\n";

struct options : cli::mode_flags {
  std::uint64_t generate = 0;
  bool generating = false;
  std::optional<double> rate;
  std::chrono::milliseconds out_of_order{0};
  std::string output = "-";
  std::string side_input;  // q13's key,value file
  bool explain = false;    // describe the flow instead of running it
  bool dot = false;
};



/// Where rows go: a file or stdout in large blocks, or nowhere (counted only).
class row_output {
 public:
  explicit row_output(const std::string& where) {
    if (where == "none") {
      return;
    }
    if (where != "-") {
      file_.emplace(where);
    }
    writing_ = true;
  }
  void header(std::string_view h) {
    if (writing_) {
      buf_.append(h);
      buf_ += '\n';
    }
  }
  template <class Fn>
  void row(Fn&& fields) {
    ++rows_;
    if (!writing_) {
      return;
    }
    fields(buf_);
    nexmark::csv::end(buf_);
    if (buf_.size() > (std::size_t{1} << 20U)) {
      flush();
    }
  }
  void flush() {
    if (file_) {
      file_->write(buf_);
    } else if (std::fwrite(buf_.data(), 1, buf_.size(), stdout) != buf_.size()) {
      throw std::runtime_error("stdout: write failed");
    }
    buf_.clear();
  }
  void close() {
    flush();
    if (file_) {
      file_->close();
    } else {
      std::fflush(stdout);
    }
  }
  [[nodiscard]] std::uint64_t rows() const { return rows_; }

 private:
  std::optional<sluice::text_file> file_;
  std::string buf_;
  bool writing_ = false;
  std::uint64_t rows_ = 0;
};

/// Bad lines are skipped; the first few are shown on stderr with their place and reason.
sluice::input_options skip_bad_lines() {
  sluice::input_options opts;
  opts.dead_letters = [shown = std::make_shared<std::atomic<int>>(0)](const sluice::bad_record& r) {
    if (shown->fetch_add(1) < 10) {
      fmt::print(stderr, "nexmark: skipped {}\n", sluice::describe(r));
    }
  };
  return opts;
}

struct side_line {  // as parsed: the value borrows the file
  std::int64_t key = 0;
  std::string_view value;
};

/// q13's side input: a CSV file of key,value lines without a header (the suite's has keys 0..9999).
nexmark::side_table::map_type load_side_input(const std::string& path) {
  return sluice::read_table<std::int64_t, std::string>(
      sluice::csv_file(path,
                       sluice::schema<side_line>(sluice::column("key", &side_line::key),
                                                 sluice::column("value", &side_line::value)),
                       skip_bad_lines(), sluice::csv_options{.header = false}),
      [](const side_line& l) { return std::pair{l.key, std::string(l.value)}; });
}

/// The query's flow; q13's reads the side input, loaded once.
template <class Query>
auto flow_of(const options& o) {
  if constexpr (requires(const nexmark::side_table& t) { Query::flow(t); }) {
    if (o.side_input.empty() && !o.explain) {
      throw std::invalid_argument("this query joins a side input: give --side-input FILE (key,value lines)");
    }
    static const nexmark::side_table table(o.side_input.empty() ? nexmark::side_table::map_type{}
                                                                : load_side_input(o.side_input));
    return Query::flow(table);
  } else {
    return Query::flow();
  }
}

void summary(std::string_view query, std::uint64_t events, std::uint64_t rows, double seconds, std::string_view more) {
  std::fprintf(stderr, "nexmark %.*s: %llu events, %llu rows, %.3f s, %.0f events/s%.*s\n",
               static_cast<int>(query.size()), query.data(), static_cast<unsigned long long>(events),
               static_cast<unsigned long long>(rows), seconds, seconds > 0 ? static_cast<double>(events) / seconds : 0.0,
               static_cast<int>(more.size()), more.data());
}

template <class Query>
void run_batch_over(std::string_view name, const auto& source, const options& o, row_output& out) {
  sluice::batch_stats stats;
  const auto rows = sluice::run_batch(source, flow_of<Query>(o), sluice::batch_options{.threads = o.threads}, &stats);
  Query::write(rows, out);
  out.close();
  summary(name, stats.records, out.rows(), stats.seconds,
          stats.bad_records > 0 ? fmt::format(", {} bad records", stats.bad_records) : std::string());
}

template <class Query>
int run_query(std::string_view name, const options& o) {
  if (o.explain) {
    const sluice::flow_description d = sluice::describe(flow_of<Query>(o));
    const std::string text = o.dot ? sluice::to_dot(d, "nexmark " + std::string(name)) : sluice::to_text(d);
    std::fwrite(text.data(), 1, text.size(), stdout);
    return 0;
  }
  row_output out(o.output);
  out.header(Query::header);
  if (o.generating) {
    nexmark::generator_config cfg;
    cfg.seed = o.seed;
    if (o.rate) {
      cfg.events_per_second = *o.rate;
    }
    cfg.out_of_order = sluice::millis{o.out_of_order.count()};
    auto events_from = [cfg](std::uint64_t first, std::uint64_t count) {
      return sluice::from_index(count, [cfg, first](std::uint64_t n) { return nexmark::make_event(cfg, first + n); });
    };
    using flow_type = decltype(flow_of<Query>(o));
    if constexpr (std::is_same_v<typename flow_type::last_stage, sluice::collect_stage>) {
      // A flow without state: its rows are final as they come, so run it a slice of events at a
      // time and write each slice's rows, holding one slice, not every row of the run. 32K
      // events: a slice's rows (~6 MB) are memory the allocator reuses; with 256K (~50 MB) every
      // slice faulted in fresh pages and q0 ran at half the speed (2.2 -> 4.2M events/s).
      constexpr std::uint64_t slice = std::uint64_t{1} << 15U;
      sluice::batch_stats total;
      for (std::uint64_t first = 0; first < o.generate; first += slice) {
        sluice::batch_stats stats;
        Query::write(sluice::run_batch(events_from(first, std::min(slice, o.generate - first)), flow_of<Query>(o),
                                       sluice::batch_options{.threads = o.threads}, &stats),
                     out);
        total.records += stats.records;
        total.seconds += stats.seconds;
      }
      out.close();
      summary(name, total.records, out.rows(), total.seconds, "");
    } else {
      run_batch_over<Query>(name, events_from(0, o.generate), o, out);
    }
    return 0;
  }
  if (!o.input.empty()) {
    run_batch_over<Query>(name, sluice::lines_file<nexmark::event>(o.input, nexmark::parse_event, skip_bad_lines()), o,
                          out);
    return 0;
  }
  sluice::tcp_source source(sluice::lines_of<nexmark::event>(nexmark::parse_event, skip_bad_lines()),
                            sluice::tcp_options{.listen = o.listen, .stop_after = o.connections});
  std::fprintf(stderr, "nexmark: listening on %s\n", source.local_endpoint().c_str());
  std::fflush(stderr);
  sluice::stream_options opts;
  opts.max_delay = o.max_delay;
  opts.expected_inputs = o.connections;
  if (o.threads > 0) {
    opts.threads = o.threads;
  }
  std::stop_source stop;
  const sluice::stop_on_signals signals(stop);
  const auto stats = sluice::run_stream(
      source, flow_of<Query>(o), [&](const auto& rows) { Query::write(rows, out); }, opts, stop.get_token());
  out.close();
  summary(name, stats.events, out.rows(), stats.seconds,
          fmt::format(" over {} connections, {} bad records, {} late", stats.inputs, stats.bad_records,
                      stats.late_events));
  return 0;
}

using runner = int (*)(std::string_view, const options&);
const std::map<std::string_view, runner>& queries() {
  static const std::map<std::string_view, runner> all = {
      {"q0", run_query<nexmark::q0>}, {"q1", run_query<nexmark::q1>}, {"q2", run_query<nexmark::q2>},
      {"q3", run_query<nexmark::q3>}, {"q4", run_query<nexmark::q4>}, {"q5", run_query<nexmark::q5>},
      {"q6", run_query<nexmark::q6>}, {"q7", run_query<nexmark::q7>}, {"q8", run_query<nexmark::q8>},
      {"q9", run_query<nexmark::q9>}, {"q10", run_query<nexmark::q10>}, {"q11", run_query<nexmark::q11>},
      {"q12", run_query<nexmark::q12>}, {"q13", run_query<nexmark::q13>}, {"q14", run_query<nexmark::q14>},
      {"q15", run_query<nexmark::q15>}, {"q16", run_query<nexmark::q16>}, {"q17", run_query<nexmark::q17>},
      {"q18", run_query<nexmark::q18>}, {"q19", run_query<nexmark::q19>}, {"q20", run_query<nexmark::q20>},
      {"q21", run_query<nexmark::q21>}, {"q22", run_query<nexmark::q22>},
  };
  return all;
}

std::string query_names() {
  std::string names;
  for (const auto& [name, run] : queries()) {
    names += names.empty() ? "" : " ";
    names += name;
  }
  return names;
}

}  // namespace

int main(int argc, char** argv) {
  cli::args args("nexmark", usage, argc, argv);
  options o;
  o.max_delay = 4s;  // the suite's WATERMARK FOR dateTime AS dateTime - INTERVAL '4' SECOND
  std::vector<std::string> positional;
  while (args.next()) {
    if (o.take(args)) {
      continue;
    }
    const std::string_view flag = args.current();
    if (flag == "--generate") {
      o.generate = args.whole_number(args.value(), "--generate");
      o.generating = true;
    } else if (flag == "--rate") {
      o.rate = static_cast<double>(args.whole_number(args.value(), "--rate"));
    } else if (flag == "--out-of-order") {
      o.out_of_order = args.duration();
    } else if (flag == "--side-input") {
      o.side_input = args.value();
    } else if (flag == "--output") {
      o.output = args.value();
    } else if (flag == "--explain") {
      o.explain = true;
    } else if (flag == "--dot") {
      o.dot = true;
    } else {
      args.take_positional(positional, 1);
    }
  }
  try {
    if (positional.size() != 1) {
      args.fail("give one QUERY");
    }
    const auto q = queries().find(positional.front());
    if (q == queries().end()) {
      args.fail("unknown query " + positional.front() + " (" + query_names() + ")");
    }
    if (o.dot && !o.explain) {
      args.fail("--dot is for --explain");
    }
    if (!o.explain && (o.generating ? 1 : 0) + (o.input.empty() ? 0 : 1) + (o.listen.empty() ? 0 : 1) != 1) {
      args.fail("give one of --input FILE, --generate N and --listen HOST:PORT");
    }
    return q->second(q->first, o);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "nexmark: %s\n", e.what());
    return 1;
  }
}
