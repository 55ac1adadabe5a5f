// One answer from the checkpoints of a stream's inputs wherever they are held: the answer a
// consumer group gives from any of its instances (DESIGN §10). Each instance of a flow over a
// partitioned source (Kafka) holds some partitions; with stream_checkpoints::keep_fired the
// latest checkpoint of each is that partition's whole share of the answer (its open windows and
// what it fired) at one source position. An instance asked for the answer collects the
// published checkpoints of every instance (its own, and its peers' over HTTP: encode_published /
// decode_published are their wire form), keeps the one covering most of each partition (the
// largest position: a partition that just moved may briefly be offered by its old owner and its
// new one), and merges them with the flow's monoid: partitions are disjoint, so the merge is
// exact, as the merge of thread partials is.
//
//   instance A: p0 @ 812, p3 @ 790 -+
//   instance B: p1 @ 801, p4 @ 799 -+-> per partition the largest position -> monoid merge -> rows
//   instance C: p2 @ 777, p5 @ 805 -+
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "sluice/core/codec.hpp"
#include "sluice/run/stream.hpp"
#include "sluice/store/result_store.hpp"

namespace sluice {

/// One published checkpoint and the serving address of the process that holds it.
struct held_input {
  std::string owner;
  stream_checkpoints::published_input checkpoint;

  auto fields() { return std::tie(owner, checkpoint); }
  auto fields() const { return std::tie(owner, checkpoint); }
};

inline constexpr std::uint32_t published_version = 1;

/// The wire form of a process's published checkpoints (GET /partitions): a version, then the
/// list of held_input (each checkpoint with `owner`), written without copying the checkpoints.
inline std::string encode_published(std::string_view owner, const std::vector<stream_checkpoints::published_input>& all) {
  const std::string owner_text(owner);
  std::string bytes;
  byte_writer w(bytes);
  encode(w, published_version);
  w.put_varint(all.size());  // as codec<std::vector<held_input>> writes its count
  for (const auto& p : all) {
    encode(w, owner_text);
    encode(w, p);
  }
  return bytes;
}
/// Its decoding; bytes that do not decode, or of another version, are a codec_error.
inline std::vector<held_input> decode_published(std::string_view bytes) {
  byte_reader r(bytes);
  std::uint32_t version = 0;
  decode(r, version);
  if (version != published_version) {
    r.fail("published checkpoints of version " + std::to_string(version) + ", this program reads version " +
           std::to_string(published_version));
  }
  std::vector<held_input> held;
  decode(r, held);
  return held;
}

template <class Flow>
class partition_answer {
 public:
  using partial_type = decltype(std::declval<const Flow&>().make_partial());
  using fired_type = decltype(std::declval<partial_type&>().advance(millis{}));

  explicit partition_answer(const Flow& flow) : flow_(flow) {}

  /// Offers an input's checkpoint; of several for one input, the one at the largest position.
  void offer(held_input h) {
    const auto it = inputs_.find(h.checkpoint.input);
    if (it == inputs_.end() || it->second.checkpoint.saved.position < h.checkpoint.saved.position) {
      std::string name = h.checkpoint.input;
      inputs_.insert_or_assign(std::move(name), std::move(h));
    }
  }
  void offer(std::vector<held_input> all) {
    for (auto& h : all) {
      offer(std::move(h));
    }
  }

  /// The inputs offered, by name, each with the checkpoint kept.
  [[nodiscard]] const std::map<std::string, held_input>& inputs() const { return inputs_; }

  /// The merged answer: every input's open windows and fired rows, as a result store. A
  /// checkpoint that does not decode is a codec_error naming its input.
  ///
  /// With `retain` (the inputs' stream_checkpoints::retain), each input dropped the windows that
  /// ended more than `retain` before its own watermark, so a window some input dropped may be
  /// whole in another: the answer keeps only the windows every input still holds, those ending
  /// after the latest horizon (the most advanced watermark minus `retain`).
  [[nodiscard]] auto store(std::chrono::milliseconds retain = std::chrono::milliseconds{0}) const {
    auto probe = flow_.make_partial();
    fired_type total(probe.advance(millis::min()));
    millis horizon = millis::min();
    for (const auto& [name, h] : inputs_) {
      try {
        auto partial = flow_.make_partial();
        byte_reader state(h.checkpoint.saved.state);
        partial.load(state);
        if (retain.count() > 0 && partial.watermark() != millis::min()) {
          horizon = std::max(horizon, partial.watermark() - retain);
        }
        fired_type fired(total.monoid());
        if (!h.checkpoint.saved.fired.empty()) {
          byte_reader f(h.checkpoint.saved.fired);
          fired.load(f);
        }
        total.merge(partial.advance(millis::max()));
        total.merge(fired);
      } catch (const codec_error& e) {
        throw codec_error("the checkpoint of " + name + " held by " + h.owner + ": " + e.what());
      }
    }
    if (horizon != millis::min()) {
      detail::drop_windows_ended_by(total, horizon);
    }
    return make_result_store(std::move(total));
  }

 private:
  const Flow& flow_;
  std::map<std::string, held_input> inputs_;
};

}  // namespace sluice
