// sales: the demo of one flow in two modes. Batch: a query over a sales CSV on every core.
// Stream: the same query over live TCP connections sending the same CSV rows, with event-time
// windows fired by the watermark. Prints the answer as CSV on stdout; counts go to stderr.
//
//   sales QUERY --input FILE [--format csv|jsonl] [--threads N] [--bad-records skip|fail]
//         [--dead-letter FILE]
//   sales QUERY --listen HOST:PORT [--connections N] [--max-delay D] [--idle-timeout D]
//         [--threads N] [--late-output FILE] [--stats-every D] [--bad-records skip|fail]
//         [--dead-letter FILE] [--serve HOST:PORT]
//   sales QUERY --log DIR                                  (batch mode over an event log)
//   sales QUERY --lambda --log DIR --listen HOST:PORT --serve HOST:PORT [--segment-bytes N]
//         [--segment-age D] [--batch-every D] [--fsync POLICY] [--max-delay D] ...
//   sales QUERY --replay DIR [--serve HOST:PORT] [--from-time MS]   (Kappa)
//   sales QUERY --kafka BROKERS --topic TOPIC --group GROUP [--until-end] [--checkpoint-dir DIR
//         | --checkpoint-topic T] [--checkpoint-every D] [--max-delay D] ...
//   sales QUERY --explain [--dot]                          (the query's flow; reads no input)
#include <algorithm>
#include <cstdio>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <stop_token>
#include <string>
#include <string_view>
#include <thread>

#include <fmt/core.h>

#include "../common/cli.hpp"
#include "../common/log_flags.hpp"
#include "lambda_mode.hpp"
#include "sales.hpp"
#include "sluice/io/csv_text.hpp"
#if SLUICE_WITH_KAFKA
#include "sluice/io/kafka_checkpoints.hpp"
#include "sluice/io/kafka_members.hpp"
#include "sluice/io/kafka_sink.hpp"
#include "sluice/io/kafka_source.hpp"
#include "sluice/run/partition_answer.hpp"
#include "sluice/serve/http_client.hpp"
#endif
#include "sluice/io/dead_letter_file.hpp"
#include "sluice/io/file_source.hpp"
#include "sluice/io/jsonl.hpp"
#include "sluice/io/log_source.hpp"
#include "sluice/io/signals.hpp"
#include "sluice/io/stream_format.hpp"
#include "sluice/io/tcp_source.hpp"
#include "sluice/io/terminal_progress.hpp"
#include "sluice/io/text_file.hpp"
#include "sluice/run/batch.hpp"
#include "sluice/run/periodic.hpp"
#include "sluice/run/stream.hpp"
#include "sluice/store/window_top_k.hpp"

namespace {

constexpr const char* usage =
    "usage: sales QUERY --input FILE [--format csv|jsonl] [--threads N] [--bad-records skip|fail]\n"
    "             [--dead-letter FILE]\n"
    "       sales QUERY --listen HOST:PORT [--connections N] [--max-delay D] [--idle-timeout D]\n"
    "             [--threads N] [--late-output FILE] [--stats-every D] [--bad-records skip|fail]\n"
    "             [--dead-letter FILE] [--serve HOST:PORT]\n"
    "       sales QUERY --log DIR [--threads N]\n"
    "       sales QUERY --lambda --log DIR --listen HOST:PORT --serve HOST:PORT [--connections N]\n"
    "             [--segment-bytes N] [--segment-age D] [--batch-every D] [--fsync POLICY]\n"
    "             [--max-delay D] [--late-output FILE] [--retain D]\n"
    "       sales QUERY --replay DIR [--serve HOST:PORT] [--from-time MS] [--max-delay D]\n"
    "       sales QUERY --kafka BROKERS --topic TOPIC --group GROUP [--until-end]\n"
    "             [--checkpoint-dir DIR | --checkpoint-topic T] [--checkpoint-every D]\n"
    "             [--serve HOST:PORT [--members-topic T]]\n"
    "             [--sink-topic T] [--session-timeout D]\n"
    "             [--max-delay D] [--threads N] [--late-output FILE] [--stats-every D] [--bad-records skip|fail]\n"
    "       sales QUERY --explain [--dot]\n"
    "QUERY:\n"
    "  by-category     per category: rows and revenue        -> category,cnt,revenue\n"
    "  region-minute   per region and 1-minute window         -> region,window_start,cnt,revenue\n"
    "  top-products    the 10 products with the most revenue  -> product_id,revenue\n"
    "  popular         per 5-minute window sliding by 1 minute, the 10 products with the largest\n"
    "                  quantity (ties: smaller id)            -> window_start,product_id,qty\n"
    "Batch mode:\n"
    "  --input FILE          sales CSV (header ts,order_id,user_id,region,category,product_id,qty,price)\n"
    "  --format FORMAT       csv (default) or jsonl: one JSON object per line with the same field names\n"
    "Stream mode (clients send the same CSV rows; a header line first is allowed):\n"
    "  --listen HOST:PORT    accept TCP connections there (port 0: any free port, printed on stderr)\n"
    "  --connections N       end the stream once N connections were accepted and all closed\n"
    "                        (the watermark also waits for all N); default: run until SIGINT/SIGTERM\n"
    "  --max-delay D         how far out of order events may come, e.g. 500ms, 5s (default 0)\n"
    "  --idle-timeout D      a connection silent this long stops holding the watermark back\n"
    "  --late-output FILE    write events that came too late for their window there (raw CSV lines)\n"
    "  --stats-every D       print the live counters on stderr every D (events, bad, late, queued\n"
    "                        chunks, watermark and its lag behind the latest event time)\n"
    "  --serve HOST:PORT     while the stream runs, HTTP: GET /metrics (Prometheus text format),\n"
    "                        GET /status (JSON) and GET /flow (--listen and --kafka)\n"
    "  region-minute prints each window's rows when it fires; the others print at the end.\n"
    "Stream mode over Kafka (a build with Kafka; the same CSV rows, one or more per message):\n"
    "  --kafka BROKERS       consume --topic TOPIC in consumer group --group GROUP: this process\n"
    "                        counts the partitions the group assigns it, each with its own\n"
    "                        watermark (every assignment reads its partition from the start,\n"
    "                        or from its checkpoint)\n"
    "  --until-end           end once every assigned partition is read to its end (a replay)\n"
    "  --checkpoint-dir DIR  keep each partition's state with its offset in DIR, every\n"
    "                        --checkpoint-every D (default 10s) and at a stop; a restart (or\n"
    "                        another process of the group given the partition) resumes from\n"
    "                        them: nothing counted twice, nothing lost (by-category,\n"
    "                        region-minute, top-products, popular)\n"
    "  --checkpoint-topic T  keep the checkpoints in Kafka topic T instead (compacted, keyed\n"
    "                        GROUP/TOPIC/PARTITION; created if missing): an instance on any machine\n"
    "                        resumes a partition from it. One or the other: the checkpoints have\n"
    "                        one home, so that no two copies can disagree\n"
    "  --serve HOST:PORT     also the group's answer from this instance, whichever instance holds\n"
    "                        which partitions: GET /QUERY (as --lambda's: every partition's latest\n"
    "                        checkpoint, open windows included, merged; 503 while a partition has no\n"
    "                        live owner), GET /group (JSON: each partition's owner, offset and\n"
    "                        checkpoint age) and GET /partitions (this instance's share, binary).\n"
    "                        Checkpoints are then taken every --checkpoint-every in memory too\n"
    "  --sink-topic T        also send the rows as they fire to topic T: a message a row, keyed by\n"
    "                        the row's key columns (and window), acknowledged by all replicas\n"
    "  --session-timeout D   how long the group waits for a silent instance (killed) before its\n"
    "                        partitions move to the others (default 45s; brokers bound it)\n"
    "  --members-topic T     where the group's instances announce their --serve addresses to each\n"
    "                        other (default sluice-members; compacted on a real cluster)\n"
    "  --retain D            windowed queries: each partition keeps (and serves) the windows that\n"
    "                        ended at most D before its watermark (default: every window)\n"
    "Over an event log (the master dataset that --lambda writes):\n"
    "  --log DIR             batch mode over every record of the log in DIR\n"
    "Lambda mode (--lambda --log DIR): rows received on --listen are appended to the log, then\n"
    "  counted by the speed layer; a batch layer recomputes over sealed segments; the answer\n"
    "  (batch view + speed layer, open windows included) is served until SIGINT/SIGTERM:\n"
    "  --serve HOST:PORT     HTTP: GET /QUERY (CSV; ?format=json for JSON; windowed queries take\n"
    "                        ?window_start=MS for one window's rows), GET /status (JSON) and\n"
    "                        GET /metrics (Prometheus text format)\n"
    "  --segment-bytes N     seal a log segment (an epoch) at this size (default 64 MiB)\n"
    "  --segment-age D       ... or at this age, so that a quiet log still reaches the batch layer\n"
    "                        (default 1m; 0: never by age)\n"
    "  --batch-every D       run the batch layer at most this often (default: when a segment seals)\n"
    "  --fsync POLICY        always (every commit), interval:MS (default interval:100) or never\n"
    "  --retain D            windowed queries: drop windows that ended more than D before the\n"
    "                        watermark, e.g. 1h (default: keep every window)\n"
    "Kappa mode (--replay DIR): the stream path replayed over the log; without --serve it prints\n"
    "  the answer at the log's head and exits; with --serve it serves it and keeps tailing:\n"
    "  --from-time MS        start at the first record whose event time is at least MS\n"
    "Seeing the flow (reads no input):\n"
    "  --explain             print the query's flow, one line a stage: kind, parameters, element type\n"
    "  --dot                 ... as a Graphviz graph instead (sales popular --explain --dot | dot -Tsvg)\n"
    "  The --serve modes also serve it: GET /flow (DOT; ?format=svg if Graphviz is installed).\n"
    "Both:\n"
    "  --threads N           worker threads (default: all cores; stream: all cores but the I/O one)\n"
    "  --bad-records POLICY  skip (default: count, dead-letter, go on) or fail (stop at the first)\n"
    "  --dead-letter FILE    write bad records there as JSON lines (source, line, offset, reason, record)\n"
    "  --quiet               no progress line (batch runs, --replay and --lambda's catch-up draw one\n"
    "                        on stderr when it is a terminal: done, rows, rows/s, ETA)\n"
    "  --progress-every D    redraw it this often (default 250ms; 0: after every step of the run)\n";

struct options {
  std::string query;
  std::string input;
  std::string format = "csv";
  unsigned threads = 0;
  sluice::bad_record_policy policy = sluice::bad_record_policy::skip;
  std::string dead_letter;
  // stream mode
  std::string listen;
  std::uint64_t connections = 0;
  std::chrono::milliseconds max_delay{0};
  std::chrono::milliseconds idle_timeout{0};
  std::string late_output;
  std::chrono::milliseconds stats_every{0};
  // stream mode over Kafka
  std::string kafka;
  std::string topic;
  std::string group;
  bool until_end = false;
  std::string checkpoint_dir;
  std::string checkpoint_topic;
  std::chrono::milliseconds checkpoint_every{10'000};
  std::string members_topic = "sluice-members";
  std::string sink_topic;
  std::chrono::milliseconds session_timeout{0};  // 0: librdkafka's default (45 s)
  // event log, lambda and kappa modes
  std::string log;
  bool lambda = false;
  std::string replay;
  std::string serve;
  sluice::log_options log_options;
  std::chrono::milliseconds batch_every{0};
  std::chrono::milliseconds retain{0};
  std::optional<std::int64_t> from_time;
  // describe the flow instead of running it
  bool explain = false;
  bool dot = false;
  bool quiet = false;  // no progress line
  std::chrono::milliseconds progress_every{250};
};

options parse_args(int argc, char** argv) {
  options o;
  cli::args args("sales", usage, argc, argv);
  while (args.next()) {
    const std::string_view a = args.current();
    if (a == "--input") {
      o.input = args.value();
    } else if (a == "--format") {
      o.format = args.value();
      if (o.format != "csv" && o.format != "jsonl") {
        args.fail("--format is csv or jsonl, not '" + o.format + "'");
      }
    } else if (a == "--threads") {
      o.threads = args.threads();
    } else if (a == "--bad-records") {
      o.policy = args.policy();
    } else if (a == "--dead-letter") {
      o.dead_letter = args.value();
    } else if (a == "--listen") {
      o.listen = args.value();
    } else if (a == "--connections") {
      o.connections = args.whole_number(args.value(), "--connections");
    } else if (a == "--max-delay") {
      o.max_delay = args.duration();
    } else if (a == "--idle-timeout") {
      o.idle_timeout = args.duration();
    } else if (a == "--stats-every") {
      o.stats_every = args.duration();
    } else if (a == "--late-output") {
      o.late_output = args.value();
    } else if (a == "--kafka") {
      o.kafka = args.value();
    } else if (a == "--checkpoint-dir") {
      o.checkpoint_dir = args.value();
    } else if (a == "--checkpoint-topic") {
      o.checkpoint_topic = args.value();
    } else if (a == "--checkpoint-every") {
      o.checkpoint_every = args.duration();
    } else if (a == "--members-topic") {
      o.members_topic = args.value();
    } else if (a == "--sink-topic") {
      o.sink_topic = args.value();
    } else if (a == "--session-timeout") {
      o.session_timeout = args.duration();
    } else if (a == "--topic") {
      o.topic = args.value();
    } else if (a == "--group") {
      o.group = args.value();
    } else if (a == "--until-end") {
      o.until_end = true;
    } else if (a == "--log") {
      o.log = args.value();
    } else if (a == "--lambda") {
      o.lambda = true;
    } else if (a == "--replay") {
      o.replay = args.value();
    } else if (a == "--serve") {
      o.serve = args.value();
    } else if (cli::log_flag(args, o.log_options)) {
      // --segment-bytes, --segment-age, --fsync
    } else if (a == "--batch-every") {
      o.batch_every = args.duration();
    } else if (a == "--retain") {
      o.retain = args.duration();
    } else if (a == "--explain") {
      o.explain = true;
    } else if (a == "--dot") {
      o.dot = true;
    } else if (a == "--quiet") {
      o.quiet = true;
    } else if (a == "--progress-every") {
      o.progress_every = args.duration();
    } else if (a == "--from-time") {
      const std::string v = args.value();
      char* end = nullptr;
      o.from_time = std::strtoll(v.c_str(), &end, 10);
      if (v.empty() || *end != '\0') {
        args.fail("--from-time takes milliseconds since the epoch, not '" + v + "'");
      }
    } else if (args.is_option() || !o.query.empty()) {
      args.unexpected();
    } else {
      o.query = a;
    }
  }
  if (o.query.empty()) {
    args.fail("no QUERY given");
  }
  if (o.query != "by-category" && o.query != "region-minute" && o.query != "top-products" && o.query != "popular") {
    args.fail("unknown query '" + o.query + "'");
  }
  if (o.dot && !o.explain) {
    args.fail("--dot is for --explain");
  }
  if (o.explain) {
    return o;  // no input is read: the other options do not matter
  }
  if (o.lambda) {
    if (o.log.empty() || o.listen.empty() || o.serve.empty() || !o.input.empty() || !o.replay.empty()) {
      args.fail("--lambda takes --log DIR, --listen HOST:PORT and --serve HOST:PORT");
    }
  } else if (!o.replay.empty()) {
    if (!o.input.empty() || !o.listen.empty() || !o.log.empty()) {
      args.fail("--replay DIR reads the log in DIR; it takes no --input, --listen or --log");
    }
  } else if (static_cast<int>(!o.input.empty()) + static_cast<int>(!o.listen.empty()) +
                 static_cast<int>(!o.log.empty()) + static_cast<int>(!o.kafka.empty()) !=
             1) {
    args.fail(
        "give one of --input FILE (batch), --log DIR (batch over a log), --listen HOST:PORT (stream),\n"
        "  --kafka BROKERS (stream), --lambda ... or --replay DIR");
  } else if (!o.serve.empty() && o.listen.empty() && o.kafka.empty()) {
    args.fail("--serve is for stream mode (--listen, --kafka), --lambda and --replay");
  }
  if (o.retain.count() > 0 && !o.lambda && (o.kafka.empty() || o.serve.empty())) {
    args.fail("--retain is for --lambda and --kafka ... --serve");
  }
  if ((!o.listen.empty() || !o.kafka.empty()) && o.format != "csv") {
    args.fail("stream mode reads CSV rows");
  }
  if (!o.kafka.empty()) {
#if !SLUICE_WITH_KAFKA
    args.fail("--kafka: this sales was built without Kafka (meson -Dkafka=enabled, librdkafka-dev)");
#endif
    if (o.topic.empty() || o.group.empty()) {
      args.fail("--kafka BROKERS takes --topic TOPIC and --group GROUP");
    }
    if (!o.checkpoint_dir.empty() && !o.checkpoint_topic.empty()) {
      args.fail("give --checkpoint-dir DIR or --checkpoint-topic T, not both: the checkpoints have one home");
    }
  } else if (!o.topic.empty() || !o.group.empty() || o.until_end || !o.checkpoint_dir.empty() ||
             !o.checkpoint_topic.empty() || !o.sink_topic.empty()) {
    args.fail("--topic, --group, --until-end, --checkpoint-dir, --checkpoint-topic and --sink-topic are for --kafka");
  }
  return o;
}

/// One query: its projected schema, its flow, its CSV header and how it prints a store's rows.
template <class Schema, class Flow, class Rows>
struct query {
  Schema schema;
  Flow flow;
  const char* header;
  Rows rows;  // rows(store, out, filter): append the store's rows as CSV
};
template <class Schema, class Flow, class Rows>
query(Schema, Flow, const char*, Rows) -> query<Schema, Flow, Rows>;

template <class Query>
std::string batch_mode(const options& o, const sluice::input_options& input, const Query& q,
                       sluice::terminal_progress& progress) {
  sluice::batch_stats stats;
  std::string out = q.header;
  sluice::batch_options opts{.threads = o.threads};
  if (progress.enabled()) {
    opts.on_progress = [&progress](const sluice::run_progress& p) { progress.draw(p); };
    opts.progress_interval = o.progress_every;
  }
  auto run_over = [&](const auto& source) {
    const auto store = sluice::run_batch(source, q.flow, opts, &stats);
    q.rows(store, out, sales::row_filter{});
  };
  if (!o.log.empty()) {
    run_over(sluice::log_source<decltype(sluice::csv_payloads(q.schema, sales::csv_header))>::whole(
        o.log, sluice::csv_payloads(q.schema, sales::csv_header), input));
  } else if (o.format == "jsonl") {
    run_over(sluice::jsonl_file(o.input, q.schema, input));
  } else {
    run_over(sluice::csv_file(o.input, q.schema, input));
  }
  std::fwrite(out.data(), 1, out.size(), stdout);
  return fmt::format("{} rows read, {} bad records, {:.3f} s, {} threads", stats.records, stats.bad_records,
                     stats.seconds, stats.chunks);
}

void print_stats(const sluice::stream_metrics& m) {
  std::fprintf(stderr,
               "sales: stats: events=%llu bad=%llu late=%llu bytes=%llu connections=%lld queued=%lld "
               "watermark=%lld lag_ms=%lld\n",
               static_cast<unsigned long long>(m.events.load()), static_cast<unsigned long long>(m.bad_records.load()),
               static_cast<unsigned long long>(m.late_events.load()), static_cast<unsigned long long>(m.bytes.load()),
               static_cast<long long>(m.inputs_open.load()), static_cast<long long>(m.queued.load()),
               static_cast<long long>(m.watermark.load()), static_cast<long long>(m.watermark_lag_ms()));
  std::fflush(stderr);
}

/// Prints each batch of fired rows at once (a named type, not a lambda: the stream engine is
/// instantiated once per query, whichever source feeds it).
template <class Query>
struct row_printer {
  const Query* q;
  const std::function<void(std::string_view)>* also = nullptr;  // --sink-topic
  std::string out;
  template <class Rows>
  void operator()(const Rows& rows) {
    out.clear();
    q->rows(rows, out, sales::row_filter{});
    std::fwrite(out.data(), 1, out.size(), stdout);
    std::fflush(stdout);  // a fired window is visible at once
    if (also != nullptr && *also) {
      (*also)(out);
    }
  }
};

/// A Kafka source's counters, for GET /metrics (write_metrics is found by ADL).
struct kafka_counters {
  std::uint64_t messages = 0;
  std::uint64_t bytes = 0;
  std::uint64_t pauses = 0;
};
[[maybe_unused]] inline void write_metrics(sluice::prometheus_text& out, std::string_view query,
                                           const kafka_counters& k) {
  const sluice::prometheus_label l[]{{"query", query}};
  out.counter("sluice_kafka_messages", "Kafka messages taken from the assigned partitions.", l,
              static_cast<double>(k.messages));
  out.counter("sluice_kafka_message_bytes", "Bytes of the Kafka messages taken.", l, static_cast<double>(k.bytes));
  out.counter("sluice_kafka_partition_pauses", "Times a partition was paused because its worker stayed full.", l,
              static_cast<double>(k.pauses));
}

/// What a mode adds to stream mode: more routes on its HTTP server, what to do once it serves
/// (with the address it serves on), and where else the fired rows go (CSV lines, no header).
struct stream_extras {
  std::function<void(sluice::http_router&)> routes;
  std::function<void(const std::string& endpoint)> started;
  std::function<void(std::string_view rows)> rows;
  std::function<std::string()> metrics;  // more of GET /metrics (Prometheus text)
};

/// Stream mode over `source` (TCP or Kafka): the rows as their windows fire, the counts at the end.
template <class Query, class Source>
sluice::stream_stats stream_over(Source& source, const options& o, const Query& q, std::size_t expected_inputs,
                                 std::stop_token stop, sluice::stream_checkpoints* checkpoints = nullptr,
                                 const stream_extras& extras = {}) {
  std::unique_ptr<sluice::text_file> late_file;
  if (!o.late_output.empty()) {
    late_file = std::make_unique<sluice::text_file>(o.late_output);
  }
  sluice::stream_options opts;
  opts.threads = o.threads != 0 ? o.threads : std::max(1U, std::thread::hardware_concurrency() - 1);
  opts.max_delay = o.max_delay;
  opts.idle_timeout = o.idle_timeout;
  opts.expected_inputs = expected_inputs;
  if (late_file) {
    opts.on_late = [&](const sluice::late_event& late) { late_file->write(late.text); };
  }
  sluice::stream_metrics metrics;
  opts.metrics = &metrics;
  opts.checkpoints = checkpoints;
  // --serve: the live counters over HTTP while the stream runs (GET /metrics, /status, /flow).
  std::unique_ptr<sluice::http_server> server;
  if (!o.serve.empty()) {
    sluice::http_router router;
    router.add("/status", [&](const sluice::http_request& /*request*/) {
      return sluice::http_response::json(sales::status_json(o.query, metrics));
    });
    router.add("/metrics", [&](const sluice::http_request& /*request*/) {
      std::string page = checkpoints != nullptr ? sluice::metrics_page(o.query, metrics, *checkpoints)
                                                : sluice::metrics_page(o.query, metrics);
      if constexpr (requires { source.pauses(); }) {  // Kafka: the source's own counters
        page += sluice::metrics_page(o.query, kafka_counters{source.messages(), source.bytes(), source.pauses()});
      }
      if (extras.metrics) {
        page += extras.metrics();
      }
      return sluice::http_response{200, std::string(sluice::prometheus_content_type), std::move(page)};
    });
    router.add("/flow", sluice::flow_page(sluice::describe(q.flow), "sales " + o.query));
    if (extras.routes) {
      extras.routes(router);
    }
    server = sales::start_serving(o.serve, std::move(router));
    if (extras.started) {
      extras.started(server->local_endpoint());
    }
  }
  std::jthread reporter;
  if (o.stats_every.count() > 0) {
    reporter = sluice::run_every(o.stats_every, [&metrics] { print_stats(metrics); });
  }

  std::fputs(q.header, stdout);
  const sluice::stream_stats stats =
      sluice::run_stream(source, q.flow, row_printer<Query>{&q, &extras.rows, {}}, opts, stop);
  if (reporter.joinable()) {
    reporter.request_stop();
    reporter.join();
    print_stats(metrics);
  }
  if (server) {
    server->stop();
  }
  if (late_file) {
    late_file->close();
  }
  return stats;
}

#if SLUICE_WITH_KAFKA
/// How many leading columns of a query's rows name the row (its key, and its window): the key of
/// its messages in --sink-topic, so that a compacted topic keeps each row's latest value.
inline std::size_t key_columns(std::string_view query) {
  return query == "region-minute" || query == "popular" ? 2 : 1;
}

/// Calls f(key, row) for each line of `rows` (CSV, '\n'-terminated; the row without its newline),
/// the key being its first `keys` fields. (The rows sales prints hold no quoted newline.)
template <class F>
void for_each_row(std::string_view rows, std::size_t keys, F&& f) {
  while (!rows.empty()) {
    const std::size_t eol = std::min(rows.find('\n'), rows.size());
    const std::string_view row = rows.substr(0, eol);
    f(sluice::leading_csv_fields(row, keys), row);
    rows.remove_prefix(std::min(rows.size(), eol + 1));
  }
}

/// --session-timeout: how long the group waits for a silent member (killed, say) before its
/// partitions move to the others; it heartbeats three times in that time.
inline std::map<std::string, std::string> session_config(std::chrono::milliseconds timeout) {
  if (timeout.count() <= 0) {
    return {};
  }
  return {{"session.timeout.ms", std::to_string(timeout.count())},
          {"heartbeat.interval.ms", std::to_string(std::max<std::int64_t>(1, timeout.count() / 3))}};
}

/// A Kafka instance's share of its group's answer, and the answer from all of them (--serve):
///   GET /partitions   this instance's partitions' latest checkpoints (binary, for its peers)
///   GET /QUERY        the group's answer: every instance's partitions merged (partition_answer);
///                     503 while some partition has no live owner (it is moving)
///   GET /group        JSON: each partition's owner, source offset and checkpoint age
/// The peers are learnt from the members topic (kafka_members), announced once serving.
template <class Query>
class group_serving {
 public:
  group_serving(const options& o, const Query& q, sluice::stream_checkpoints* checkpoints)
      : o_(o), q_(q), checkpoints_(checkpoints) {}
  group_serving(const group_serving&) = delete;
  group_serving& operator=(const group_serving&) = delete;

  stream_extras extras() {
    if (checkpoints_ == nullptr || o_.serve.empty()) {
      return {};
    }
    return stream_extras{[this](sluice::http_router& router) { add_routes(router); },
                         [this](const std::string& endpoint) { start(endpoint); },
                         {},
                         [this] { return lag_metrics(); }};
  }

 private:
  void start(const std::string& endpoint) {
    client_ = sluice::detail::kafka_client(RD_KAFKA_PRODUCER,
                                           sluice::detail::kafka_config({{"bootstrap.servers", o_.kafka}}));
    partitions_ = sluice::detail::topic_partitions(client_.get(), o_.topic);
    members_.emplace(sluice::kafka_members_options{
        .brokers = o_.kafka, .topic = o_.members_topic, .group = o_.group, .address = endpoint});
    std::lock_guard lock(mutex_);
    self_ = endpoint;
  }

  struct gathered {
    sluice::partition_answer<decltype(Query::flow)> answer;
    std::vector<std::string> unreachable;
  };
  /// Every live instance's partitions, this one's included.
  gathered gather() {
    std::string self;
    {
      std::lock_guard lock(mutex_);
      self = self_;
    }
    if (self.empty()) {
      throw sluice::http_error(503, "not serving yet");
    }
    gathered g{sluice::partition_answer<decltype(Query::flow)>(q_.flow), {}};
    for (auto& own : checkpoints_->published()) {
      g.answer.offer(sluice::held_input{self, std::move(own)});
    }
    for (const std::string& peer : members_->peers()) {
      try {
        // A dead peer's machine may never answer: give it two seconds, then answer without it.
        g.answer.offer(sluice::decode_published(sluice::http_get_within(peer, "/partitions", std::chrono::seconds(2))));
      } catch (const std::exception& e) {
        g.unreachable.push_back(peer + " (" + e.what() + ")");  // killed, or just left
      }
    }
    return g;
  }

  void add_routes(sluice::http_router& router) {
    router.add("/partitions", [this](const sluice::http_request& /*request*/) {
      std::string self;
      {
        std::lock_guard lock(mutex_);
        self = self_;
      }
      return sluice::http_response{200, "application/octet-stream",
                                   sluice::encode_published(self, checkpoints_->published())};
    });
    router.add("/" + o_.query, [this](const sluice::http_request& request) {
      return sales::query_response(request, [&](const sales::row_filter& filter) {
        const gathered g = gather();
        std::string missing;
        for (std::int32_t p = 0; p < partitions_; ++p) {
          if (g.answer.inputs().count(o_.topic + "/" + std::to_string(p)) == 0) {
            missing += (missing.empty() ? "" : ",") + std::to_string(p);
          }
        }
        if (!missing.empty()) {
          std::string why = "the answer is incomplete: partitions " + missing + " of " + o_.topic +
                            " have no live owner yet (they move when the group rebalances)";
          for (const std::string& u : g.unreachable) {
            why += "; unreachable: " + u;
          }
          throw sluice::http_error(503, why);
        }
        std::string out = q_.header;
        q_.rows(g.answer.store(o_.retain), out, filter);
        return out;
      });
    });
    router.add("/group", [this](const sluice::http_request& /*request*/) {
      const gathered g = gather();
      const auto now =
          std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
              .count();
      std::string json = fmt::format("{{\"topic\":\"{}\",\"partitions\":{},\"held\":[", o_.topic, partitions_);
      bool first = true;
      for (const auto& [name, h] : g.answer.inputs()) {
        json += first ? "" : ",";
        first = false;
        const auto lag = lag_of(name, h.checkpoint.saved.position);
        json += fmt::format("{{\"input\":\"{}\",\"owner\":\"{}\",\"offset\":{},\"lag\":{},\"checkpoint_age_ms\":{}}}",
                            name, h.owner, h.checkpoint.saved.position,
                            lag ? std::to_string(*lag) : std::string("null"), now - h.checkpoint.saved_at_ms);
      }
      json += fmt::format("],\"unreachable\":{}}}\n", g.unreachable.size());
      return sluice::http_response::json(std::move(json));
    });
  }

  /// The messages of a partition past its latest checkpoint here (nullopt: Kafka did not say).
  std::optional<std::int64_t> lag_of(const std::string& input, std::int64_t position) const {
    const std::size_t slash = input.rfind('/');
    const auto end = sluice::detail::partition_end(client_.get(), o_.topic, std::stoi(input.substr(slash + 1)));
    if (!end) {
      return std::nullopt;
    }
    return std::max<std::int64_t>(0, *end - std::max<std::int64_t>(0, position));
  }
  /// GET /metrics: each partition held here, its lag behind the end of the partition.
  std::string lag_metrics() const {
    {
      std::lock_guard lock(mutex_);  // client_ is set before self_, under the lock
      if (self_.empty()) {
        return {};
      }
    }
    sluice::prometheus_text out;
    for (const auto& p : checkpoints_->published()) {
      if (const auto lag = lag_of(p.input, p.saved.position)) {
        const sluice::prometheus_label l[]{{"query", o_.query}, {"input", p.input}};
        out.gauge("sluice_kafka_partition_lag_messages",
                  "Messages of a partition held here past its latest checkpoint (its end offset minus the offset "
                  "checkpointed).",
                  l, static_cast<double>(*lag));
      }
    }
    return std::move(out).str();
  }

  const options& o_;
  const Query& q_;
  sluice::stream_checkpoints* checkpoints_;
  sluice::detail::kafka_handle client_;  // metadata and end offsets, beside the consumer
  std::int32_t partitions_ = 0;
  std::optional<sluice::kafka_members> members_;
  mutable std::mutex mutex_;
  std::string self_;  // set once serving: the routes wait for it (and for members_, set before it)
};
#endif

template <class Query>
std::string stream_mode(const options& o, const sluice::input_options& input, const Query& q, std::stop_token stop) {
#if SLUICE_WITH_KAFKA
  if (!o.kafka.empty()) {
    sluice::kafka_source source(sluice::csv_lines(q.schema, sales::csv_header, input),
                                sluice::kafka_options{.brokers = o.kafka,
                                                      .topic = o.topic,
                                                      .group = o.group,
                                                      .stop_at_end = o.until_end,
                                                      .config = session_config(o.session_timeout)});
    std::fprintf(stderr, "sales: consuming %s from %s as group %s\n", o.topic.c_str(), o.kafka.c_str(),
                 o.group.c_str());
    std::fflush(stderr);
    // Checkpoints on disk with --checkpoint-dir, in a compacted topic with --checkpoint-topic;
    // with --serve also in memory, where each partition's latest one (open windows and fired
    // rows) is its share of the group's answer.
    std::optional<sluice::stream_checkpoints> checkpoints;
    if (!o.checkpoint_topic.empty()) {
      auto store = std::make_shared<sluice::kafka_checkpoint_store>(sluice::kafka_checkpoint_options{
          .brokers = o.kafka, .topic = o.checkpoint_topic, .key_prefix = o.group + "/"});
      std::fprintf(stderr, "sales: checkpoints in topic %s, keyed %s/%s/PARTITION, up to %zu bytes each\n",
                   o.checkpoint_topic.c_str(), o.group.c_str(), o.topic.c_str(), store->options().max_bytes);
      checkpoints.emplace(std::move(store), o.checkpoint_every, "sales " + o.query);
    } else if (!o.checkpoint_dir.empty() || !o.serve.empty()) {
      checkpoints.emplace(o.checkpoint_dir, o.checkpoint_every, "sales " + o.query);
    }
    if (checkpoints) {
      checkpoints->keep_fired = true;
      checkpoints->retain = o.retain;
    }
    group_serving<Query> group(o, q, checkpoints ? &*checkpoints : nullptr);
    stream_extras extras = group.extras();
    std::optional<sluice::kafka_sink> sink;
    if (!o.sink_topic.empty()) {
      sink.emplace(sluice::kafka_sink_options{.brokers = o.kafka, .topic = o.sink_topic});
      extras.rows = [&sink, keys = key_columns(o.query)](std::string_view rows) {
        for_each_row(rows, keys, [&](std::string_view key, std::string_view row) { sink->send(key, row); });
      };
    }
    const sluice::stream_stats stats =
        stream_over(source, o, q, 0, stop, checkpoints ? &*checkpoints : nullptr, extras);
    std::string summary = fmt::format(
        "{} rows received in {} messages from {} partition assignments ({} bytes), {} bad records, {} late, {:.3f} s",
        stats.events, source.messages(), stats.inputs, stats.bytes, stats.bad_records, stats.late_events,
        stats.seconds);
    if (checkpoints) {
      summary += fmt::format("; {} partitions restored from checkpoints, {} checkpoints written",
                             checkpoints->restored.load(), checkpoints->saved.load());
    }
    if (sink) {
      sink->flush();
      summary += fmt::format("; {} rows sent to {}", sink->delivered(), o.sink_topic);
    }
    return summary;
  }
#endif
  sluice::tcp_source source(sluice::csv_lines(q.schema, sales::csv_header, input),
                            sluice::tcp_options{.listen = o.listen, .stop_after = o.connections});
  std::fprintf(stderr, "sales: listening on %s\n", source.local_endpoint().c_str());
  std::fflush(stderr);
  const sluice::stream_stats stats = stream_over(source, o, q, o.connections, stop);
  return fmt::format("{} rows received over {} connections ({} bytes), {} bad records, {} late, {:.3f} s", stats.events,
                     stats.inputs, stats.bytes, stats.bad_records, stats.late_events, stats.seconds);
}

auto by_category_rows = [](const auto& store, std::string& out, const sales::row_filter& /*all*/) {
  for (const auto& row : store.scan()) {
    const auto& [cnt, revenue] = row.value;
    sluice::append_csv_field(out, row.key);
    fmt::format_to(std::back_inserter(out), ",{},{}\n", cnt, sales::format_cents(revenue));
  }
};
auto region_minute_rows = [](const auto& store, std::string& out, const sales::row_filter& filter) {
  for (const auto& row : store.scan()) {
    if (filter.window_start && row.key.window.start != *filter.window_start) {
      continue;
    }
    const auto& [cnt, revenue] = row.value;
    sluice::append_csv_field(out, row.key.key);
    fmt::format_to(std::back_inserter(out), ",{},{},{}\n", row.key.window.start.count(), cnt,
                   sales::format_cents(revenue));
  }
};
auto top_products_rows = [](const auto& store, std::string& out, const sales::row_filter& /*all*/) {
  for (const auto& row : store.top_k(10, [](std::int64_t revenue) { return revenue; })) {
    fmt::format_to(std::back_inserter(out), "{},{}\n", row.key, sales::format_cents(row.value));
  }
};
auto popular_rows = [](const auto& store, std::string& out, const sales::row_filter& filter) {
  const auto by_qty = [](std::int64_t qty) { return qty; };
  for (const auto& row : sluice::top_k_by_window(store, sales::popular_top, by_qty, filter.window_start)) {
    fmt::format_to(std::back_inserter(out), "{},{},{}\n", row.key.window.start.count(), row.key.key, row.value);
  }
};

}  // namespace

int main(int argc, char** argv) {
  const options o = parse_args(argc, argv);
  std::stop_source stop;
  std::unique_ptr<sluice::stop_on_signals> signals;
  if (!o.listen.empty() || !o.serve.empty() || !o.kafka.empty()) {
    signals = std::make_unique<sluice::stop_on_signals>(stop);  // before any other thread starts
  }

  sluice::input_options input;
  input.on_bad_record = o.policy;
  std::unique_ptr<sluice::dead_letter_file> dead_letters;
  std::uint64_t bad_seen = 0;
  if (!o.dead_letter.empty()) {
    dead_letters = std::make_unique<sluice::dead_letter_file>(o.dead_letter);
  }
  // The progress line of a long run, on a terminal's stderr (other stderr lines go above it).
  sluice::terminal_progress progress("sales: ", !o.quiet && ::isatty(STDERR_FILENO) == 1);
  input.dead_letters = [&](const sluice::bad_record& r) {
    ++bad_seen;
    if (dead_letters) {
      dead_letters->write(r);
    } else if (bad_seen <= 10) {
      progress.print("sales: bad record: " + sluice::describe(r));
    }
  };

  try {
    sales::lambda_settings lambda;
    lambda.query = o.query;
    lambda.log_dir = o.lambda ? o.log : o.replay;
    lambda.listen = o.listen;
    lambda.serve = o.serve;
    lambda.connections = o.connections;
    lambda.late_output = o.late_output;
    lambda.from_time = o.from_time;
    lambda.engine.log = o.log_options;
    lambda.engine.max_delay = o.max_delay;
    lambda.engine.idle_timeout = o.idle_timeout;
    lambda.engine.batch_every = o.batch_every;
    lambda.engine.batch_threads = o.threads;
    lambda.engine.retain = o.retain;
    lambda.engine.progress_interval = o.progress_every;  // --lambda's catch-up and --replay's
    auto run = [&](const auto& q) {
      if (o.explain) {
        const sluice::flow_description d = sluice::describe(q.flow);
        const std::string text = o.dot ? sluice::to_dot(d, "sales " + o.query) : sluice::to_text(d);
        std::fwrite(text.data(), 1, text.size(), stdout);
        return std::string();
      }
      if (o.lambda) {
        return sales::lambda_mode(lambda, input, q, stop.get_token(), progress);
      }
      if (!o.replay.empty()) {
        return sales::replay_mode(lambda, q, stop.get_token(), progress);
      }
      const bool streaming = !o.listen.empty() || !o.kafka.empty();
      return streaming ? stream_mode(o, input, q, stop.get_token()) : batch_mode(o, input, q, progress);
    };
    std::string summary;
    if (o.query == "by-category") {
      summary =
          run(query{sales::by_category_schema(), sales::by_category(), "category,cnt,revenue\n", by_category_rows});
    } else if (o.query == "region-minute") {
      summary = run(query{sales::region_minute_schema(), sales::region_minute(), "region,window_start,cnt,revenue\n",
                          region_minute_rows});
    } else if (o.query == "top-products") {
      summary =
          run(query{sales::top_products_schema(), sales::product_revenue(), "product_id,revenue\n", top_products_rows});
    } else {
      summary = run(query{sales::popular_schema(), sales::popular(), "window_start,product_id,qty\n", popular_rows});
    }
    if (dead_letters) {
      dead_letters->close();
    }
    if (!o.explain) {
      std::fprintf(stderr, "sales: %s: %s\n", o.query.c_str(), summary.c_str());
    }
    if (bad_seen > 10 && !dead_letters) {
      std::fprintf(stderr, "sales: (%llu more bad records; use --dead-letter FILE to keep them all)\n",
                   static_cast<unsigned long long>(bad_seen - 10));
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "sales: %s\n", e.what());
    return 1;
  }
  return 0;
}
