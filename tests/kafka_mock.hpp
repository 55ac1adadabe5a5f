// librdkafka's mock cluster in the test's own process, for in-process Kafka tests.
#pragma once

#include <doctest/doctest.h>
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include <string>

#include "sluice/io/kafka_source.hpp"

namespace test_support {

/// A mock cluster of `brokers` brokers with topic `topic` of `partitions` partitions (each on up
/// to 3 brokers), for the test's life.
class mock_cluster {
 public:
  mock_cluster(const std::string& topic, int partitions, int brokers = 1)
      : client_(sluice::detail::kafka_client(
            RD_KAFKA_PRODUCER, sluice::detail::kafka_config({{"test.mock.num.brokers", std::to_string(brokers)}}))) {
    rd_kafka_mock_cluster_t* cluster = rd_kafka_handle_mock_cluster(client_.get());
    REQUIRE(cluster != nullptr);
    REQUIRE(rd_kafka_mock_topic_create(cluster, topic.c_str(), partitions, brokers < 3 ? brokers : 3) ==
            RD_KAFKA_RESP_ERR_NO_ERROR);
    brokers_ = rd_kafka_mock_cluster_bootstraps(cluster);
  }
  [[nodiscard]] const std::string& brokers() const { return brokers_; }

 private:
  sluice::detail::kafka_handle client_;
  std::string brokers_;
};

}  // namespace test_support
