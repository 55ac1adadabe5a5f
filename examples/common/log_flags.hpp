// The event-log flags of the Lambda programs (sales --lambda, shop_lambda): segment size and
// age, and the fsync policy, parsed one way with one set of messages.
#pragma once

#include <stdexcept>
#include <string>
#include <string_view>

#include "cli.hpp"
#include "sluice/store/event_log.hpp"

namespace cli {

/// If the current argument is --segment-bytes N, --segment-age D or --fsync POLICY, read its
/// value into `log` and return true; false for any other argument.
inline bool log_flag(args& a, sluice::log_options& log) {
  const std::string_view flag = a.current();
  if (flag == "--segment-bytes") {
    log.segment_bytes = a.whole_number(a.value(), flag);
    if (log.segment_bytes == 0) {
      a.fail("--segment-bytes must be at least 1");
    }
  } else if (flag == "--segment-age") {
    log.segment_age = a.duration();
  } else if (flag == "--fsync") {
    const std::string v = a.value();
    try {
      log.fsync = sluice::fsync_policy::parse(v);
    } catch (const std::invalid_argument& e) {
      a.fail(std::string("--fsync: ") + e.what());
    }
  } else {
    return false;
  }
  return true;
}

}  // namespace cli
