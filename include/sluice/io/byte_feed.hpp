// byte_feed: what an unbounded byte source (TCP, UDP, stdin, a tailed file) hands its bytes
// to. The stream runner implements it; a source only opens inputs, pushes what it read and
// closes them. Each input (a connection, a file) keeps its own parse state and watermark.
#pragma once

#include <cstdint>
#include <functional>
#include <string>

namespace sluice {

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
};

}  // namespace sluice
