// kafka_test_cluster: librdkafka's protocol-level mock cluster as a process, so that tests (and
// anyone without a Kafka installation) can run sluice's Kafka programs against real brokers'
// protocol over loopback TCP.
//
//   kafka_test_cluster [--brokers N] [--topic NAME:PARTITIONS]...
//
// Prints the bootstrap servers (HOST:PORT,...) as one line on stdout once the topics exist, then
// serves until SIGINT or SIGTERM. The cluster lives in memory: nothing survives the process.
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include <csignal>
#include <cstdio>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "../common/cli.hpp"
#include "sluice/io/kafka_source.hpp"

namespace {

constexpr const char* usage =
    "usage: kafka_test_cluster [--brokers N] [--topic NAME:PARTITIONS]...\n"
    "  Runs librdkafka's mock Kafka cluster on loopback: N brokers (default 3), the topics given\n"
    "  (replicated on up to 3 brokers), until SIGINT or SIGTERM. Prints the bootstrap servers on\n"
    "  stdout as one line once it is ready. SIGUSR1 takes broker 1 down, SIGUSR2 brings it back up.\n"
    "  Each partition keeps only about its last 5 MiB (the mock's retention): older messages are\n"
    "  deleted before anyone reads them. Keep test data under 4 MiB a partition.\n";

struct topic_spec {
  std::string name;
  int partitions = 1;
};

}  // namespace

int main(int argc, char** argv) {
  int brokers = 3;
  std::vector<topic_spec> topics;
  cli::args args("kafka_test_cluster", usage, argc, argv);
  while (args.next()) {
    const std::string_view a = args.current();
    if (a == "--brokers") {
      brokers = static_cast<int>(args.whole_number(args.value(), "--brokers"));
      if (brokers < 1 || brokers > 16) {
        args.fail("--brokers must be 1..16");
      }
    } else if (a == "--topic") {
      const std::string v = args.value();
      const auto colon = v.rfind(':');
      if (colon == std::string::npos || colon == 0) {
        args.fail("--topic is NAME:PARTITIONS, not '" + v + "'");
      }
      const auto n = args.whole_number(v.substr(colon + 1), "--topic's PARTITIONS");
      if (n < 1 || n > 1000) {
        args.fail("--topic's PARTITIONS must be 1..1000");
      }
      topics.push_back(topic_spec{v.substr(0, colon), static_cast<int>(n)});
    } else {
      args.fail("unexpected argument '" + std::string(a) + "'");
    }
  }

  // Block the stop signals before librdkafka starts its threads, so that sigwait below takes them.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGUSR1);
  sigaddset(&stop_signals, SIGUSR2);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  try {
    // A client with test.mock.num.brokers hosts the mock cluster; the cluster lives as long as it.
    auto client = sluice::detail::kafka_client(
        RD_KAFKA_PRODUCER, sluice::detail::kafka_config({{"test.mock.num.brokers", std::to_string(brokers)}}));
    rd_kafka_mock_cluster_t* cluster = rd_kafka_handle_mock_cluster(client.get());
    if (cluster == nullptr) {
      throw sluice::kafka_error("kafka_test_cluster: librdkafka made no mock cluster");
    }
    for (const topic_spec& t : topics) {
      const rd_kafka_resp_err_t err =
          rd_kafka_mock_topic_create(cluster, t.name.c_str(), t.partitions, brokers < 3 ? brokers : 3);
      if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        throw sluice::kafka_error("kafka_test_cluster: topic " + t.name + ": " + rd_kafka_err2str(err));
      }
    }
    std::printf("%s\n", rd_kafka_mock_cluster_bootstraps(cluster));
    std::fflush(stdout);
    std::fprintf(stderr, "kafka_test_cluster: %d brokers at %s\n", brokers, rd_kafka_mock_cluster_bootstraps(cluster));
    // SIGUSR1 takes broker 1 down (its connections close, it accepts none), SIGUSR2 brings it
    // back: a broker failure mid-stream, for tests.
    while (true) {
      int signal = 0;
      sigwait(&stop_signals, &signal);
      if (signal != SIGUSR1 && signal != SIGUSR2) {
        break;
      }
      const bool down = signal == SIGUSR1;
      const rd_kafka_resp_err_t err =
          down ? rd_kafka_mock_broker_set_down(cluster, 1) : rd_kafka_mock_broker_set_up(cluster, 1);
      std::fprintf(stderr, "kafka_test_cluster: broker 1 %s%s\n", down ? "down" : "up",
                   err != RD_KAFKA_RESP_ERR_NO_ERROR ? (std::string(": ") + rd_kafka_err2str(err)).c_str() : "");
      std::fflush(stderr);
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s\n", e.what());
    return 1;
  }
  return 0;
}
