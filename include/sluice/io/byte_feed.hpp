// byte_feed: what an unbounded byte source (TCP, UDP, stdin, a tailed file) hands its bytes
// to. The stream runner implements it; a source only opens inputs, pushes what it read and
// closes them. Each input (a connection, a file) keeps its own parse state and watermark.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <utility>

#include "sluice/core/time.hpp"

namespace sluice {

/// Where pushed bytes come from in a source that has positions: the position after them, and
/// the time the source gives their records.
struct source_position {
  std::int64_t next = -1;
  millis time{0};
  // false: `next` counts whole messages or records, and the pushed bytes end with whole records
  // (a Kafka offset, an event log offset). true: `next` is the byte offset after the pushed
  // bytes, which may end inside a record (a tailed file's read): a checkpoint then covers the
  // records parsed whole, and resumes at the first byte of the one still cut off.
  bool in_bytes = false;
};

/// What an input's positions are positions in, for a source whose input name can stand for
/// different things over time (a tailed file's path names a new file after a rotation), and
/// how far a restored position may reach.
struct input_origin {
  std::uint64_t id = 0;   // which file (or log) the positions are in; not 0
  std::int64_t end = -1;  // how far the source reaches now: a checkpoint past it cannot resume
  /// Called when the checkpoint was saved in another origin: the source's chance to read that
  /// one again (a rotated file found by its inode). Returns its end, or nullopt if it is gone.
  std::function<std::optional<std::int64_t>(std::uint64_t saved)> find{};
};

class byte_feed {
 public:
  using input_handle = std::uint64_t;

  virtual ~byte_feed() = default;

  /// A new input (a connection, a file): it holds the watermark back from now on.
  virtual input_handle open_input(std::string name) = 0;

  /// Never waits: false when the input's worker queue is full; `bytes` is then untouched and the
  /// source should stop reading until the on_space callback runs (this is backpressure).
  virtual bool try_push(input_handle input, std::string& bytes) = 0;

  /// Waits while the worker queue is full (for sources that read on their own thread). False if
  /// the run is over and the bytes were not taken.
  virtual bool push(input_handle input, std::string bytes) = 0;

  /// The input ended (peer closed, end of file). Its last bytes are still processed first.
  virtual void close_input(input_handle input) = 0;

  /// Called from a worker thread when queue space frees up after a try_push failed.
  virtual void on_space(std::function<void()> fn) = 0;

  // Sources with positions (a Kafka partition's offsets), for checkpoints (DESIGN §10). A runner
  // without checkpoints keeps the defaults: positions are ignored, nothing is restored.

  /// try_push, and `at.next` is the source position just after these bytes (where a reader
  /// that has processed them would resume): a checkpoint of the input records it. `at.time` is
  /// the time the source gives these bytes' records (a Kafka message's timestamp), which a flow
  /// takes as event time with event_time(source_time).
  virtual bool try_push_at(input_handle input, std::string& bytes, const source_position& /*at*/) {
    return try_push(input, bytes);
  }
  /// push, with the position after the bytes, as try_push_at.
  virtual bool push_at(input_handle input, std::string bytes, const source_position& /*at*/) {
    return push(input, std::move(bytes));
  }
  /// open_input for an input whose positions are in `origin.id`. With checkpoints, the name's
  /// checkpoint is restored only if it was saved in that origin (or in one `origin.find` goes
  /// back to) and reaches no further than its end; else it is a checkpoint_error (the file was
  /// replaced while the run was stopped, or cut short), thrown before anything opens or is
  /// restored.
  virtual input_handle open_input_in(std::string name, const input_origin& /*origin*/) {
    return open_input(std::move(name));
  }
  /// The input goes on in another origin (a tailed file's new file after a rotation): its last
  /// record without a final newline ends where the old origin ended, and its next bytes start a
  /// new stream, named `name` in dead letters, at position 0 of `origin`. Its state and watermark
  /// go on (with checkpoints it is saved at once, in the new origin). Returns the input to push
  /// to from now on.
  virtual input_handle reopen_input(input_handle input, std::string name, const input_origin& /*origin*/) {
    close_input(input);
    return open_input(std::move(name));
  }
  /// Where an input just opened resumes: the position its restored checkpoint covers (the
  /// source seeks there), or nullopt (no checkpoint: the source starts where it would).
  virtual std::optional<std::int64_t> restored_position(input_handle /*input*/) { return std::nullopt; }
  /// The input moves to another process (a revoked partition), or waits for a restart (a
  /// stopped tailed file). With checkpoints its state goes with its last checkpoint, taken after
  /// the bytes pushed so far, and is not fired here; the call returns once that checkpoint is
  /// saved (or the run has failed). Without checkpoints this is close_input.
  virtual void hand_off_input(input_handle input) { close_input(input); }
};

}  // namespace sluice
